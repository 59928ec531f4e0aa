/* snapshot.c - the start state in a memfd (snapshot.h). */
#define _GNU_SOURCE
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct snapshot_head {
    sigset_t mask, ignored;
    int argc, envc;
};

enum { SNAPSHOT_MAX = 16 << 20 }; /* argv and environ are far smaller in practice */

static int count(char **v)
{
    int n = 0;
    while (v && v[n])
        n++;
    return n;
}

static int put(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        long w = syscall(SYS_write, fd, p, len); /* write() is interposed (io.c) */
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int snapshot_write(const struct snapshot *s)
{
    int fd = memfd_create("huptime-start", 0);
    if (fd < 0)
        return -1;
    struct snapshot_head h = { s->mask, s->ignored, count(s->argv), count(s->envp) };
    int ok = put(fd, &h, sizeof h) == 0 && put(fd, s->cwd, strlen(s->cwd) + 1) == 0;
    for (int i = 0; ok && i < h.argc; i++)
        ok = put(fd, s->argv[i], strlen(s->argv[i]) + 1) == 0;
    for (int i = 0; ok && i < h.envc; i++)
        ok = put(fd, s->envp[i], strlen(s->envp[i]) + 1) == 0;
    if (!ok || lseek(fd, 0, SEEK_SET) != 0) {
        int saved = errno;
        syscall(SYS_close, fd); /* not the interposed close: nothing tracks it */
        errno = saved;
        return -1;
    }
    return fd;
}

/* The next string of [*p, end): NULL if it does not end within. */
static char *next(char **p, char *end)
{
    char *s = *p, *nul = memchr(s, '\0', (size_t)(end - s));
    if (!nul)
        return NULL;
    *p = nul + 1;
    return s;
}

static char **strings(char **p, char *end, int n)
{
    char **v = calloc((size_t)n + 1, sizeof *v);
    for (int i = 0; v && i < n; i++)
        if (!(v[i] = next(p, end))) {
            free(v);
            return NULL;
        }
    return v;
}

int snapshot_read(int fd, struct snapshot *s)
{
    struct stat st;
    struct snapshot_head h;
    char *buf = NULL;
    int r = -1;
    if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof h || st.st_size > SNAPSHOT_MAX ||
        !(buf = malloc((size_t)st.st_size)) ||
        pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)
        goto out;
    memcpy(&h, buf, sizeof h);
    char *p = buf + sizeof h, *end = buf + st.st_size;
    if (h.argc < 1 || h.envc < 0 || h.argc > SNAPSHOT_MAX || h.envc > SNAPSHOT_MAX ||
        !(s->cwd = next(&p, end)) || !(s->argv = strings(&p, end, h.argc)))
        goto out;
    if (!(s->envp = strings(&p, end, h.envc))) {
        free(s->argv);
        goto out;
    }
    s->mask = h.mask;
    s->ignored = h.ignored;
    buf = NULL; /* the strings live in it */
    r = 0;
out:
    free(buf);
    syscall(SYS_close, fd); /* not the interposed close: nothing tracks it */
    return r;
}
