/* record.h - the instance record that `huptime --status/--restart/--stop` read.
 *
 * The launcher makes a private directory per instance and names it in
 * HUPTIME_CONTROL. There each generation's shared page is the file gen-N (mapped
 * shared, so its workers and `huptime --status` see the same bytes), and
 * lifecycle events are lines appended to the file `events`. Without the directory,
 * or when it is unusable, the page is anonymous and no event is written: restarts
 * work the same, the control commands just cannot see the instance.
 * docs/protocol.md describes both files. The files are reached through the
 * directory's descriptor (config.h: control_fd) when there is one, so a program
 * that gives up root keeps its record, and so do the generations it starts.
 */
#ifndef HUPTIME_RECORD_H
#define HUPTIME_RECORD_H

#include <stddef.h>
#include <sys/types.h>

/* A zeroed shared mapping of size bytes for generation `number`: the file
 * gen-N when the directory is usable, else anonymous. NULL (errno set) if even
 * the anonymous mapping fails. The first call (the constructor's) also protects
 * the directory's descriptor (reg_adopt). */
void *record_map_page(int number, size_t size);

/* The existing file gen-N of generation `number` mapped shared, as it is (not
 * truncated, not zeroed): NULL without a record, or if there is no such file or
 * it is shorter than size. */
void *record_reopen_page(int number, size_t size);

/* The path of generation `number`'s page file (this lineage's slot with
 * --multi) into buf: 0, or -1 without a usable record. */
int record_page_path(int number, char *buf, size_t size);

/* Remove gen-N: that generation is gone or never became one. */
void record_forget(int number);

/* Append "<unix ms> <generation> <pid> <what>\n" to the events file; what
 * starts with one of protocol.h's EVENT_ words. */
void record_event(int number, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The text after "failed " of the last failed event this process recorded (with or
 * without a record), or "": the reason a restart did not happen. */
const char *record_last_failure(void);

/* This process is about to change its effective uid from root to uid (a
 * program giving up root after bind): the record's directory, its pages and its
 * events file become uid's, so this generation and the ones it starts, which
 * run as uid, can still write them. instance.json stays root's. No-op unless
 * the effective uid is 0 and uid is not; a failure is logged once. */
void record_give(uid_t uid);

#endif
