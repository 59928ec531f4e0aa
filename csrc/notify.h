/* notify.h - sd_notify: tell the service manager (systemd) what the service does.
 *
 * Only when the start had NOTIFY_SOCKET and no supervisor (a supervisor is the
 * service's main process then, and speaks for it). The program's NOTIFY_SOCKET is
 * a socket of the leader's instead: what it would send to systemd could stop the
 * unit or move its main PID.
 * Each message is one datagram from the process that sends it, which must be the
 * service's main PID of the moment (NotifyAccess=main): generation 1's leader,
 * then each leader a MAINPID= line named. See docs/protocol.md, "systemd".
 */
#ifndef HUPTIME_NOTIFY_H
#define HUPTIME_NOTIFY_H

/* Constructor: remember the socket, take NOTIFY_SOCKET out of the environment. */
void notify_init(void);

/* 1 if messages go anywhere. */
int notify_enabled(void);

/* Send one message (lines "NAME=value", printf style); failures are logged once. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A generation serves: READY=1 if this process is the main one (generation 1, or
 * exec mode; else the predecessor named it with MAINPID=); and when the unit has an
 * fd store (FDSTORE), its listeners go there (FDSTORE=1, FDNAME=huptime), so a start
 * after `systemctl restart` or a crash finds them in LISTEN_FDS, queue and all. */
void notify_serving(const int *fds, int n);

/* The program's NOTIFY_SOCKET is this leader's (a datagram socket, -1 if none).
 * notify_proxy_read takes what is queued there: READY=1 marks the program as one
 * that speaks sd_notify (ENV_NOTIFY_PROGRAM, for the generations this one starts);
 * STATUS= and WATCHDOG=1 are passed on while this process is the main one; the
 * rest (STOPPING, MAINPID, RELOADING...) is never passed on. */
int notify_proxy_fd(void);
void notify_proxy_read(void);

/* 1 once the program sent READY=1, or if it is not known to speak sd_notify;
 * waits for it at most timeout_ms. */
int notify_program_ready(int timeout_ms);

/* CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC=. */
unsigned long long notify_monotonic_usec(void);

#endif
