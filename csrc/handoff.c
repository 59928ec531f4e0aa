/* handoff.c - the text forms of the handoff variables, and address comparison. */
#define _GNU_SOURCE
#include "handoff.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

int huptime_parse_uint(const char *s, long max, long *out)
{
    if (!s || !*s)
        return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v > (max - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

int huptime_parse_fd_list(const char *s, int *out, int max)
{
    int n = 0;
    if (!s)
        return -1;
    if (!*s)
        return 0;
    const char *p = s;
    for (;;) {
        char item[16];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item || n >= max)
            return -1;
        memcpy(item, p, len);
        item[len] = '\0';
        long v;
        if (huptime_parse_uint(item, 65535, &v) < 0)
            return -1;
        for (int i = 0; i < n; i++)
            if (out[i] == v)
                return -1;
        out[n++] = (int)v;
        if (p[len] == '\0')
            return n;
        p += len + 1;
    }
}

int huptime_format_fd_list(const int *fds, int n, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return -1;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        int w = snprintf(buf + used, size - used, i ? ",%d" : "%d", fds[i]);
        if (w < 0 || (size_t)w >= size - used)
            return -1;
        used += (size_t)w;
    }
    return (int)used;
}

int huptime_sockaddr_same(const struct sockaddr *a, socklen_t alen,
                          const struct sockaddr *b, socklen_t blen)
{
    if (!a || !b || alen < sizeof(sa_family_t) || blen < sizeof(sa_family_t))
        return 0;
    if (a->sa_family != b->sa_family)
        return 0;
    switch (a->sa_family) {
    case AF_INET: {
        if (alen < sizeof(struct sockaddr_in) || blen < sizeof(struct sockaddr_in))
            return 0;
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AF_INET6: {
        if (alen < sizeof(struct sockaddr_in6) || blen < sizeof(struct sockaddr_in6))
            return 0;
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    case AF_UNIX: {
        size_t off = offsetof(struct sockaddr_un, sun_path);
        if (alen <= off || blen <= off)
            return 0; /* unnamed sockets are never the same endpoint */
        const char *x = ((const struct sockaddr_un *)(const void *)a)->sun_path;
        const char *y = ((const struct sockaddr_un *)(const void *)b)->sun_path;
        size_t xl = alen - off, yl = blen - off;
        if (x[0] != '\0' && y[0] != '\0') { /* paths: up to the first NUL */
            size_t xn = strnlen(x, xl), yn = strnlen(y, yl);
            return xn == yn && memcmp(x, y, xn) == 0;
        }
        return xl == yl && memcmp(x, y, xl) == 0; /* abstract names: bytes */
    }
    default:
        return 0;
    }
}

int huptime_format_sockaddr(const struct sockaddr *sa, socklen_t len, int dgram,
                            char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    int n = -1;
    if (!sa || len < sizeof(sa_family_t))
        return -1;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        n = snprintf(out, size, "%s%s:%d", dgram ? LISTENER_UDP : "", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        n = snprintf(out, size, "%s[%s]:%d", dgram ? LISTENER_UDP : "", host,
                     ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const void *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t plen = len > off ? len - off : 0;
        const char *kind = dgram ? LISTENER_UNIXGRAM : LISTENER_UNIX;
        if (plen > sizeof un->sun_path)
            plen = sizeof un->sun_path;
        if (plen > 0 && un->sun_path[0] == '\0') /* abstract: the printable part */
            n = snprintf(out, size, "%s@%.*s", kind, (int)strnlen(un->sun_path + 1, plen - 1),
                         un->sun_path + 1);
        else
            n = snprintf(out, size, "%s%.*s", kind, (int)strnlen(un->sun_path, plen),
                         un->sun_path);
    }
    if (n <= 0 || (size_t)n >= size)
        return -1;
    for (int i = 0; i < n; i++) /* the list is space-separated */
        if (out[i] == ' ' || out[i] == '\n')
            out[i] = '?';
    return n;
}

const char *huptime_env_get(char *const *envp, const char *name)
{
    size_t len = strlen(name);
    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
            return *envp + len + 1;
    return NULL;
}

void huptime_put_pid(char *slot, long pid)
{
    char tmp[24];
    int n = 0;
    if (pid <= 0)
        pid = 0;
    do {
        tmp[n++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid && n < (int)sizeof tmp);
    for (int i = 0; i < n; i++)
        slot[i] = tmp[n - 1 - i];
    slot[n] = '\0';
}

/* The handoff variables; `start`: those that describe one start of the program
 * (descriptor numbers, a pending restart), stale in a later image of the same
 * process, as opposed to which process and generation it is. */
static const struct { const char *key; int start; } handoff_keys[] = {
    { ENV_FDS "=", 1 }, { ENV_READY_FD "=", 1 }, { ENV_PENDING "=", 1 },
    { ENV_IGNORED_SIGNALS "=", 1 }, { ENV_PROTOCOL "=", 1 }, { ENV_STDIO_FDS "=", 1 },
    { ENV_CONTROL_FD "=", 1 }, { ENV_REEXEC "=", 1 },
    { ENV_GENERATION "=", 0 }, { ENV_PID "=", 0 },
};

/* 1 if entry sets a handoff variable (with only_start: one of a start's). */
static int handoff_entry(const char *entry, int only_start)
{
    for (size_t i = 0; i < sizeof handoff_keys / sizeof *handoff_keys; i++)
        if ((handoff_keys[i].start || !only_start) &&
            strncmp(entry, handoff_keys[i].key, strlen(handoff_keys[i].key)) == 0)
            return 1;
    return 0;
}

static int is_handoff_entry(const char *entry) { return handoff_entry(entry, 0); }

int huptime_start_entry(const char *entry) { return handoff_entry(entry, 1); }

/* Room for one added entry: a name and a list of numbers of up to 5 digits. */
enum { ENTRY_TEXT = 64 + (HANDOFF_MAX_FDS > HANDOFF_MAX_SIGNALS ? HANDOFF_MAX_FDS : HANDOFF_MAX_SIGNALS) * 6 };

/* Write "NAME=v1,v2,..." at *text and advance it; -1 if the list is malformed. */
static int put_list(char **text, const char *name, const int *v, int n)
{
    char list[ENTRY_TEXT - 32];
    if (huptime_format_fd_list(v, n, list, sizeof list) < 0)
        return -1;
    *text += snprintf(*text, ENTRY_TEXT, "%s=%s", name, list) + 1;
    return 0;
}

char **huptime_build_env(char *const *base, const struct handoff *h, char **pid_slot)
{
    return huptime_build_env_control(base, h, -1, pid_slot);
}

char **huptime_build_env_control(char *const *base, const struct handoff *h, int control_fd,
                                 char **pid_slot)
{
    enum { EXTRA = 9 };
    size_t count = 0, bytes = 0;
    for (char *const *e = base; e && *e; e++)
        if (!is_handoff_entry(*e)) {
            count++;
            bytes += strlen(*e) + 1;
        }
    size_t nptr = count + EXTRA + 1;
    char **env = malloc(nptr * sizeof(char *) + bytes + EXTRA * ENTRY_TEXT);
    if (!env)
        return NULL;
    char *text = (char *)(env + nptr);
    size_t n = 0;
    for (char *const *e = base; e && *e; e++)
        if (!is_handoff_entry(*e)) {
            size_t len = strlen(*e) + 1;
            memcpy(text, *e, len);
            env[n++] = text;
            text += len;
        }
    env[n++] = text;
    if (put_list(&text, ENV_FDS, h->fds, h->nfds) < 0) {
        free(env);
        return NULL;
    }
    env[n++] = text;
    text += snprintf(text, ENTRY_TEXT, ENV_GENERATION "=%d", h->generation) + 1;
    env[n++] = text;
    text += snprintf(text, ENTRY_TEXT, ENV_PROTOCOL "=%d", HUPTIME_PROTOCOL_VERSION) + 1;
    if (h->ready_fd >= 0) {
        env[n++] = text;
        text += snprintf(text, ENTRY_TEXT, ENV_READY_FD "=%d", h->ready_fd) + 1;
    }
    if (h->pending) {
        env[n++] = text;
        text += snprintf(text, ENTRY_TEXT, ENV_PENDING "=1") + 1;
    }
    if (h->nignored >= 0) {
        env[n++] = text;
        if (put_list(&text, ENV_IGNORED_SIGNALS, h->ignored, h->nignored) < 0) {
            free(env);
            return NULL;
        }
    }
    if (h->nstdio == 2) {
        env[n++] = text;
        if (put_list(&text, ENV_STDIO_FDS, h->stdio, 2) < 0) {
            free(env);
            return NULL;
        }
    }
    if (control_fd > 2) {
        env[n++] = text;
        text += snprintf(text, ENTRY_TEXT, ENV_CONTROL_FD "=%d", control_fd) + 1;
    }
    env[n++] = text;
    memcpy(text, ENV_PID "=", sizeof ENV_PID);
    *pid_slot = text + sizeof ENV_PID;
    huptime_put_pid(*pid_slot, 0);
    env[n] = NULL;
    return env;
}
