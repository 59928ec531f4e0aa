/* record.c - the instance record: gen-N page files and the events file (record.h). */
#define _GNU_SOURCE
#include "record.h"
#include "config.h"
#include "log.h"
#include "real.h"
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Files are reached through cfg.control_fd (config.c) when there is one: a
 * lookup relative to it never searches the directories above the record, which
 * a program that gave up root may no longer enter. Else by path. */
static int path_of(const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", cfg.control, name);
    if (n > 0 && (size_t)n < size)
        return 0;
    errno = ENAMETOOLONG;
    return -1;
}

static int open_in_record(const char *name, int flags, mode_t mode)
{
    char path[PATH_MAX];
    if (cfg.control_fd >= 0)
        return openat(cfg.control_fd, name, flags, mode);
    return path_of(name, path, sizeof path) == 0 ? open(path, flags, mode) : -1;
}

static void unlink_in_record(const char *name)
{
    char path[PATH_MAX];
    if (cfg.control_fd >= 0)
        REAL(unlinkat)(cfg.control_fd, name, 0);
    else if (path_of(name, path, sizeof path) == 0)
        REAL(unlink)(path);
}

/* gen-N, or gen-N-SLOT for a --multi copy: 0, or -1 without a usable record. */
static int page_name(int number, char *buf, size_t size)
{
    if (!cfg.control)
        return -1;
    int n = cfg.slot >= 0 ? snprintf(buf, size, "gen-%d-%d", number, cfg.slot)
                          : snprintf(buf, size, "gen-%d", number);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int record_page_path(int number, char *buf, size_t size)
{
    char name[64];
    return page_name(number, name, sizeof name) == 0 && path_of(name, buf, size) == 0 ? 0 : -1;
}

static void *map_file(int fd, size_t size)
{
    void *page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    REAL(close)(fd);
    errno = e;
    return page == MAP_FAILED ? NULL : page;
}

void *record_map_page(int number, size_t size)
{
    static int warned, adopted;
    char name[64];
    if (cfg.control_fd >= 0 && !adopted) { /* the constructor's call: protect it from now on */
        adopted = 1;
        reg_adopt(&cfg.control_fd, FD_INTERNAL);
    }
    if (page_name(number, name, sizeof name) == 0) {
        int fd = open_in_record(name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        void *page = NULL;
        if (fd >= 0 && ftruncate(fd, (off_t)size) == 0)
            page = map_file(fd, size);
        else if (fd >= 0)
            REAL(close)(fd);
        if (page)
            return page;
        log_once(&warned, "no instance record in %s (%s): `huptime --status` and friends "
                 "will not see this generation", cfg.control, strerror(errno));
        unlink_in_record(name);
    }
    void *page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return page == MAP_FAILED ? NULL : page;
}

void *record_reopen_page(int number, size_t size)
{
    char name[64];
    struct stat st;
    if (page_name(number, name, sizeof name) < 0)
        return NULL;
    int fd = open_in_record(name, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)size) {
        REAL(close)(fd);
        return NULL; /* being made, or not a page: touching it past its end is SIGBUS */
    }
    return map_file(fd, size);
}

void record_forget(int number)
{
    char name[64];
    if (page_name(number, name, sizeof name) == 0)
        unlink_in_record(name);
}

static char last_failure[256];

const char *record_last_failure(void) { return last_failure; }

void record_event(int number, const char *fmt, ...)
{
    char line[512];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(line, sizeof line, "%lld %d %d ", (long long)ts.tv_sec * 1000 +
                     ts.tv_nsec / 1000000, number, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    size_t len = log_vformat(line, sizeof line, (size_t)n, fmt, ap);
    va_end(ap);
    for (size_t i = (size_t)n; i + 1 < len; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    if (strncmp(line + n, EVENT_FAILED " ", sizeof EVENT_FAILED) == 0)
        snprintf(last_failure, sizeof last_failure, "%.*s", (int)(len - (size_t)n - sizeof EVENT_FAILED - 1),
                 line + n + sizeof EVENT_FAILED);
    if (!cfg.control)
        return;
    int fd = open_in_record("events", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    ssize_t w = REAL(write)(fd, line, len); /* one write: lines never mix */
    (void)w;
    REAL(close)(fd);
}

void record_give(uid_t uid)
{
    static int warned;
    if (!cfg.control || uid == 0 || uid == (uid_t)-1 || geteuid() != 0)
        return;
    int dir = open_in_record(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    DIR *d = dir >= 0 ? fdopendir(dir) : NULL;
    int failed = !d || fchownat(dir, "", uid, (gid_t)-1, AT_EMPTY_PATH) < 0;
    int e = errno;
    struct dirent *entry;
    while (d && !failed && (entry = readdir(d))) /* the pages and events; instance.json stays */
        if (strncmp(entry->d_name, "gen-", 4) == 0 || strcmp(entry->d_name, "events") == 0)
            if (fchownat(dir, entry->d_name, uid, (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0 &&
                errno != ENOENT) {
                failed = 1;
                e = errno;
            }
    if (d)
        closedir(d);
    else if (dir >= 0)
        REAL(close)(dir);
    if (failed)
        log_once(&warned, "cannot hand the instance record %s to uid %d (%s): its next "
                 "generations will not be seen by `huptime --status` and friends",
                 cfg.control, (int)uid, strerror(e));
    else
        LOG_DEBUG("instance record handed to uid %d: the program gives up root", (int)uid);
}
