/* supervised.h - the link to a huptime supervisor (--revive, --multi), if any.
 *
 * The supervisor passes one end of a SOCK_SEQPACKET socketpair in
 * HUPTIME_SUPERVISOR_FD; every generation keeps it at that number. Once a
 * generation is ready its leader sends "serving N PID SLOT" (SLOT: HUPTIME_SLOT,
 * or -1) with its listeners attached (SCM_RIGHTS), so the supervisor can hold them
 * while it starts the program again after an exit, or starts more copies. End of
 * file on the link means the supervisor is gone: the generation is stopped
 * (SIGTERM, SIGKILL 5 s later). See docs/protocol.md.
 */
#ifndef HUPTIME_SUPERVISED_H
#define HUPTIME_SUPERVISED_H

/* Constructor: validate and protect the link. */
void supervised_init(void);

/* The leader, once ready: report and hand the listeners over. */
void supervised_report_serving(void);

/* The link's descriptor for poll(), or -1 without a supervisor. */
int supervised_fd(void);

/* The link became readable: 1 if the supervisor is gone. */
int supervised_gone(void);

#endif
