/* unlink.c - --unlink: move files aside at a restart, back on rollback (unlink.h). */
#define _GNU_SOURCE
#include "unlink.h"
#include "config.h"
#include "log.h"
#include "real.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void unlink_files(enum unlink_step step)
{
    for (char **f = cfg.unlink; f && *f; f++) {
        char aside[PATH_MAX + 32];
        snprintf(aside, sizeof aside, "%s.huptime-%d", *f, (int)getpid());
        int r = 0;
        const char *what = "";
        if (step == UNLINK_BEGIN && cfg.mode == MODE_EXEC) {
            r = REAL(unlink)(*f);
            what = "remove";
        } else if (step == UNLINK_BEGIN) {
            r = rename(*f, aside);
            what = "move aside";
        } else if (step == UNLINK_ROLLBACK) {
            r = rename(aside, *f);
            what = "put back";
        } else {
            r = REAL(unlink)(aside);
            what = "remove";
        }
        if (r < 0 && errno != ENOENT)
            log_info("--unlink: cannot %s %s: %s", what, *f, strerror(errno));
    }
}
