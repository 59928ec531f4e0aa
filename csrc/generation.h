/* generation.h - state shared by every process of one generation.
 *
 * The leader maps one shared page before it forks anything, so its workers see
 * the same page (a file of the instance record when there is one, see control.h);
 * a pipe made at the same time is the broadcast that wakes every process of the
 * generation when it must stop accepting. The layout is part of the protocol
 * (docs/protocol.md): `huptime --status` reads it.
 */
#ifndef HUPTIME_GENERATION_H
#define HUPTIME_GENERATION_H

enum gen_state {
    GEN_SERVING = 0,
    GEN_STOPPING = 1,  /* not accepting; draining */
    GEN_RETIRED = 2,   /* drained; ending its processes, forks refused */
};

#define GEN_PAGE_VERSION 1
#define GEN_PAGE_SIZE 4096

struct gen_page {
    int state;        /* enum gen_state */
    int conns;        /* connections held by the generation's processes */
    int ready;        /* 1 once the leader declared the generation ready */
    int number;
    int leader;       /* PID of the generation's leader */
    int version;      /* GEN_PAGE_VERSION, written last */
    int waiting;      /* 1 once a process waits on a listener */
    int reserved;
    long long started_ms;   /* wall clock, ms since the epoch */
    char listeners[1024];   /* once ready: "127.0.0.1:8000 unix:/run/app.sock" */
};

extern struct gen_page *gen;   /* NULL while inert */
extern int gen_wake_rd;        /* readable once the generation is stopping */

/* Create the page and the wake pipe. 0 on success, -1 (logged) on failure. */
int gen_init(int number);

/* Count connections up or down; wakes gen_wait_drained() at zero. */
void gen_conn_add(int delta);
int gen_stopping(void);   /* STOPPING or RETIRED */
int gen_retired(void);

/* Tell every process of the generation to stop accepting. */
void gen_broadcast_stop(void);

/* Readiness: the first process that waits for clients marks the generation
 * waiting; the leader waits for that, lets the program claim its inherited
 * listeners, then sets it ready. */
int gen_mark_waiting(void);    /* returns 1 for the first caller */
void gen_wait_waiting(void);
void gen_set_ready(void);

/* Wait until no connection is open, at most timeout_ms; 0 drained, -1 timed out. */
int gen_wait_drained(long timeout_ms);

#endif
