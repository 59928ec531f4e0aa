/* protocol.h - what the shim and the launcher share, defined once.
 *
 * The C side includes this file; the launcher reads the same file at run time
 * (src/huptime/protocol.py): the block between the cdef markers goes to cffi as
 * it stands (integer constants, the page's states and layout), and every
 * `#define NAME "text"` line below it is read as a string constant. So keep to
 * those two forms here: no other macros, no includes. docs/protocol.md says what
 * each item means; a test compares cffi's layout with the compiler's.
 */
#ifndef HUPTIME_PROTOCOL_H
#define HUPTIME_PROTOCOL_H

/* cdef begin */

/* The handoff's version. A new generation's shim takes over from a leader whose
 * HUPTIME_PROTOCOL is in [HUPTIME_PROTOCOL_MIN, HUPTIME_PROTOCOL_VERSION];
 * without the variable it is 1 (every shim before the variable existed). */
#define HUPTIME_PROTOCOL_VERSION 2
#define HUPTIME_PROTOCOL_MIN 1

/* Sockets handed to a new generation (listeners and datagram sockets); the
 * supervisor's report carries as many. A program with more: the first ones by
 * descriptor number are handed over, the rest are logged once and left out. */
#define HANDOFF_MAX_FDS 64
/* Signals listed in HUPTIME_IGNORED_SIGNALS. */
#define HANDOFF_MAX_SIGNALS 64
/* --unlink files. */
#define MAX_UNLINK 16
/* --backlog's default: every listen queue at least this long (as nginx and node
 * ask; the kernel caps it at net.core.somaxconn). */
#define BACKLOG_DEFAULT 511
/* --probe-http: the longest path. */
#define PROBE_HTTP_PATH_MAX 1024

/* The generation page: one per generation, shared by its processes, the file
 * gen-N (gen-N-SLOT with --multi) of the instance record. */
#define GEN_PAGE_VERSION 1      /* written last: a page without it is being made */
#define GEN_PAGE_SIZE 4096
#define GEN_LISTENERS_SIZE 1024

/* A generation's life, in this order; --status prints the names in lower case
 * without the GEN_ prefix. */
enum gen_state {
    GEN_SERVING = 0,   /* accepting (or starting, until `ready`) */
    GEN_DRAINING = 1,  /* a successor serves: not accepting, connections finish */
    GEN_RETIRED = 2,   /* drained: its processes are ended, forks refused */
};

struct gen_page {
    int state;        /* enum gen_state */
    int conns;        /* connections held by the generation's processes */
    int ready;        /* 1 once the leader declared the generation ready */
    int number;       /* the generation's number, 1 for the launcher's start */
    int leader;       /* PID of the generation's leader */
    int version;      /* GEN_PAGE_VERSION, written last */
    int waiting;      /* 1 once a process waits on a listener */
    int datagrams;    /* datagrams received and not answered yet (was reserved, 0) */
    long long started_ms;                 /* wall clock, ms since the epoch */
    char listeners[GEN_LISTENERS_SIZE];   /* what it hands over, space-separated */
};

/* cdef end */

/* The environment: settings the launcher sets once; every generation reads them. */
#define ENV_MODE "HUPTIME_MODE"                     /* fork | exec */
#define ENV_SIGNAL "HUPTIME_SIGNAL"                 /* restart signal number */
#define ENV_READY_TIMEOUT_MS "HUPTIME_READY_TIMEOUT_MS"
#define ENV_DRAIN_TIMEOUT_MS "HUPTIME_DRAIN_TIMEOUT_MS"
#define ENV_DRAIN_IDLE_MS "HUPTIME_DRAIN_IDLE_MS"         /* 0: idle connections stay */
#define ENV_DEBUG "HUPTIME_DEBUG"                   /* 1: debug lines */
#define ENV_WAIT "HUPTIME_WAIT"                     /* 1: --wait */
#define ENV_DRAIN_SIGNAL "HUPTIME_DRAIN_SIGNAL"     /* fork mode: sent to a draining leader */
#define ENV_CHECK "HUPTIME_CHECK"                   /* a shell command run before restarts */
#define ENV_PROBE "HUPTIME_PROBE"                   /* fork mode: a shell command run against the twins */
#define ENV_PROBE_HTTP "HUPTIME_PROBE_HTTP"         /* fork mode: GET this path on the first twin */
#define ENV_PROBE_TIMEOUT_MS "HUPTIME_PROBE_TIMEOUT_MS"
#define ENV_BACKLOG "HUPTIME_BACKLOG"               /* listen queues at least this; 0: the program's */
#define ENV_UNLINK "HUPTIME_UNLINK"                 /* absolute paths, one per line */
#define ENV_CONTROL "HUPTIME_CONTROL"               /* the instance record's directory */
#define ENV_SUPERVISOR_FD "HUPTIME_SUPERVISOR_FD"   /* link to a supervisor */
#define ENV_SLOT "HUPTIME_SLOT"                     /* --multi: the copy's number */
#define ENV_NOTIFY_PROGRAM "HUPTIME_NOTIFY_PROGRAM" /* 1: the program sent READY=1 (sd_notify) */

/* The environment: the handoff, written anew for every generation. */
#define ENV_PID "HUPTIME_PID"                       /* the shim acts only in this PID */
#define ENV_GENERATION "HUPTIME_GENERATION"
#define ENV_FDS "HUPTIME_FDS"                       /* "3,4": the handed-over sockets */
#define ENV_READY_FD "HUPTIME_READY_FD"             /* fork mode: the readiness pipe */
#define ENV_PENDING "HUPTIME_PENDING"               /* 1: restart again once ready */
#define ENV_IGNORED_SIGNALS "HUPTIME_IGNORED_SIGNALS"
#define ENV_PROTOCOL "HUPTIME_PROTOCOL"             /* HUPTIME_PROTOCOL_VERSION */
#define ENV_STDIO_FDS "HUPTIME_STDIO_FDS"           /* "OUT,ERR": the first start's stdout, stderr */
#define ENV_REEXEC "HUPTIME_REEXEC"                 /* the leader exec'd itself: its start snapshot's memfd */
#define ENV_CONTROL_FD "HUPTIME_CONTROL_FD"         /* the record's directory, opened at start */

/* The readiness pipe (fork mode): the new generation writes these bytes. */
#define READY_SERVING "R"                 /* ready: the old generation drains */
#define READY_DAEMON "D"                  /* + native int PID: a daemon child leads */
#define READY_FAILED "F"                  /* + one line: why it failed (--probe); roll back */

/* What a --probe command gets (docs/protocol.md): the first twin's address, and
 * every listener as "shared=private", one per line. */
#define ENV_PROBE_ADDR "HUPTIME_PROBE_ADDR"
#define ENV_PROBE_ADDRS "HUPTIME_PROBE_ADDRS"

/* The events file: "<unix ms> <generation> <pid> <word> [details]" per line. */
#define EVENT_SERVING "serving"           /* + the listeners, as in the page */
#define EVENT_DRAINING "draining"         /* a successor serves */
#define EVENT_FAILED "failed"             /* + the reason: a restart rolled back */
#define EVENT_EXITED "exited"             /* the generation is gone */

/* The listeners text (page and serving event): one word per socket. */
#define LISTENER_UDP "udp:"               /* udp:127.0.0.1:53, udp:[::1]:53 */
#define LISTENER_UNIX "unix:"             /* unix:/run/app.sock, unix:@abstract */
#define LISTENER_UNIXGRAM "unixgram:"     /* a Unix datagram socket */

/* The supervisor link: "serving N PID SLOT" with the sockets attached. */
#define REPORT_SERVING "serving"

#endif
