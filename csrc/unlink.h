/* unlink.h - --unlink: files moved out of the way while a restart runs.
 *
 * When a restart begins each file is moved aside (FILE.huptime-PID), so a program
 * that refuses to start while its pid file exists starts; a fork-mode rollback
 * moves them back over whatever the failed generation wrote, and a handover
 * removes them. Exec mode has no rollback: the files are removed at once.
 */
#ifndef HUPTIME_UNLINK_H
#define HUPTIME_UNLINK_H

enum unlink_step { UNLINK_BEGIN, UNLINK_ROLLBACK, UNLINK_COMMIT };

/* Apply step to every file in cfg.unlink; failures other than ENOENT are logged. */
void unlink_files(enum unlink_step step);

#endif
