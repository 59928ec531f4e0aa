/* children.c - ending and awaiting this process's children (children.h). */
#define _GNU_SOURCE
#include "children.h"
#include "clock.h"
#include "pidfd.h"
#include "real.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long proc_stat_field(pid_t pid, int field)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = REAL(read)(fd, buf, sizeof buf - 1);
    REAL(close)(fd);
    if (n <= 0 || field < 3)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* field 2, comm, may hold spaces and parentheses */
    for (int f = 2; p && f < field; f++)
        p = strchr(p + 1, ' ');
    char *end;
    long value = p ? strtol(p + 1, &end, 10) : 0;
    return p && end != p + 1 ? value : -1;
}

static int is_my_child(pid_t pid) { return proc_stat_field(pid, 4) == (long)getpid(); }

int children_of(pid_t pid, pid_t *out, int max)
{
    char path[96];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(path);
    if (!tasks)
        return 0;
    struct dirent *t;
    while ((t = readdir(tasks)) && n < max) {
        if (t->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.20s/children", (int)pid, t->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        int child;
        while (n < max && fscanf(f, "%d", &child) == 1)
            out[n++] = child;
        fclose(f);
    }
    closedir(tasks);
    return n;
}

enum { MAX_CHILDREN = 256 };

/* pidfds of this process's children (all but `except`) in pfds, each sent sig
 * first unless sig is 0; returns how many. */
static int watch_children(pid_t except, int sig, struct pollfd *pfds)
{
    pid_t pids[MAX_CHILDREN];
    int n = children_of(getpid(), pids, MAX_CHILDREN), m = 0;
    for (int i = 0; i < n; i++) {
        if (pids[i] == except)
            continue;
        int fd = pidfd_open(pids[i]);
        if (fd < 0)
            continue;
        if (!is_my_child(pids[i]) || (sig && pidfd_signal(fd, sig) < 0)) {
            REAL(close)(fd);
            continue;
        }
        pfds[m++] = (struct pollfd){ fd, POLLIN, 0 };
    }
    return m;
}

/* A watched child that exited has its pidfd stored as ~fd: poll() skips it. */
static int exited(const struct pollfd *p) { return p->fd < 0; }
static int pidfd_of(const struct pollfd *p) { return p->fd < 0 ? ~p->fd : p->fd; }

/* Wait until every watched child has exited (its pidfd readable) or timeout_ms
 * passed; returns how many still run. */
static int await_children(struct pollfd *pfds, int m, long timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    int alive = m;
    while (alive > 0) {
        long left = deadline - now_ms();
        if (left <= 0)
            break;
        if (REAL(poll)(pfds, (nfds_t)m, (int)left) < 0 && errno != EINTR)
            break;
        alive = 0;
        for (int i = 0; i < m; i++) {
            if (!exited(&pfds[i]) && pfds[i].revents)
                pfds[i].fd = ~pfds[i].fd;
            alive += !exited(&pfds[i]);
        }
    }
    return alive;
}

int children_wait(pid_t except, long timeout_ms, int *watched)
{
    struct pollfd pfds[MAX_CHILDREN];
    int m = watch_children(except, 0, pfds);
    int alive = await_children(pfds, m, timeout_ms);
    for (int i = 0; i < m; i++)
        REAL(close)(pidfd_of(&pfds[i]));
    *watched = m;
    return alive;
}

/* Processes sent SIGTERM, watched in pfds: SIGKILL to those still there after
 * grace_ms; reaped (waited for) when they are this process's children. */
static void end_watched(struct pollfd *pfds, int m, long grace_ms, int reap)
{
    await_children(pfds, m, grace_ms);
    for (int i = 0; i < m; i++) {
        siginfo_t si;
        int fd = pidfd_of(&pfds[i]);
        if (!exited(&pfds[i]))
            pidfd_signal(fd, SIGKILL);
        if (reap)
            pidfd_wait(fd, &si, WEXITED);
        REAL(close)(fd);
    }
}

int children_end(pid_t except, long grace_ms)
{
    struct pollfd pfds[MAX_CHILDREN];
    int m = watch_children(except, SIGTERM, pfds);
    end_watched(pfds, m, grace_ms, 1);
    return m;
}

/* 1 if /proc/PID/maps names path (as it is, or removed since). */
static int maps_path(const char *pid, const char *path)
{
    char name[64], line[4352];
    size_t plen = strlen(path);
    snprintf(name, sizeof name, "/proc/%.20s/maps", pid);
    FILE *f = fopen(name, "re");
    if (!f)
        return 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (!p)
            continue;
        p[strcspn(p, "\n")] = '\0';
        found = strncmp(p, path, plen) == 0 && (p[plen] == '\0' || strcmp(p + plen, " (deleted)") == 0);
    }
    fclose(f);
    return found;
}

int processes_end_mapping(const char *path, long grace_ms)
{
    struct pollfd pfds[MAX_CHILDREN];
    int m = 0;
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    struct dirent *e;
    /* No owner check: the page is a 0600 file in a private directory, so what maps
     * it forked from this lineage (workers that dropped privileges included), and
     * the maps of a process this user may not signal are not readable to it. */
    while ((e = readdir(proc)) && m < MAX_CHILDREN) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || atoi(e->d_name) == (int)getpid())
            continue;
        int fd = pidfd_open(atoi(e->d_name));
        if (fd < 0)
            continue;
        if (!maps_path(e->d_name, path) || pidfd_signal(fd, SIGTERM) < 0) { /* checked after the pidfd: never a reused PID */
            REAL(close)(fd);
            continue;
        }
        pfds[m++] = (struct pollfd){ fd, POLLIN, 0 };
    }
    closedir(proc);
    end_watched(pfds, m, grace_ms, 0);
    return m;
}
