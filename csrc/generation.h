/* generation.h - the page every process of one generation shares, and its waits.
 *
 * The leader maps the page before it forks anything (the constructor asks
 * record.h for it), so its workers see the same page; a pipe made at the same
 * time is the broadcast that wakes every process of the generation when it must
 * stop accepting. The layout and the states are part of the protocol
 * (protocol.h, docs/protocol.md): `huptime --status` reads the page. This file
 * is the only writer of its fields; the rest of the shim reads them through the
 * functions below.
 */
#ifndef HUPTIME_GENERATION_H
#define HUPTIME_GENERATION_H

#include "protocol.h"

extern struct gen_page *gen __attribute__((visibility("hidden")));   /* NULL while inert */
extern int gen_wake_rd;        /* readable once the generation is draining */
extern int gen_wake_wr;        /* the constructor protects both ends (registry.h) */

/* Constructor: take the zeroed shared page (GEN_PAGE_SIZE bytes) for
 * generation `number` led by this process, and make the wake pipe. 0 on
 * success, -1 (logged) on failure; the caller owns the page either way. */
int gen_init(struct gen_page *page, int number);

/* Count connections up or down; wakes gen_wait_drained() at zero. The hot path,
 * inline: one atomic add, and a load of the state only when the count is down. */
void gen_wake_drained(void);
static inline void gen_conn_add(int delta)
{
    if (!gen)
        return;
    if (__atomic_add_fetch(&gen->conns, delta, __ATOMIC_SEQ_CST) <= 0 &&
        __atomic_load_n(&gen->state, __ATOMIC_SEQ_CST) != GEN_SERVING)
        gen_wake_drained();
}
int gen_conns(void);
/* Count datagrams in flight (received, until the receiving thread waits again). */
void gen_dgram_add(int delta);
int gen_datagrams(void);
/* DRAINING or RETIRED: accept nothing more. Inline: every accept asks. */
static inline int gen_draining(void)
{
    return gen && __atomic_load_n(&gen->state, __ATOMIC_SEQ_CST) != GEN_SERVING;
}
static inline int gen_retired(void)
{
    return gen && __atomic_load_n(&gen->state, __ATOMIC_SEQ_CST) == GEN_RETIRED;
}

/* The leader, when a successor serves (fork) or before its exec: every process
 * of the generation stops accepting. */
void gen_broadcast_stop(void);
/* The leader, once drained: no new processes from here on. */
void gen_retire(void);

/* Readiness: the first process that waits for clients marks the generation
 * waiting; the leader waits for that, lets the program claim its inherited
 * listeners, then sets it ready. */
int gen_mark_waiting(void);    /* returns 1 for the first caller */
int gen_is_waiting(void);
int gen_wait_waiting(long timeout_ms);   /* 1 once waiting, 0 at the timeout */
void gen_set_ready(void);
int gen_is_ready(void);

/* The leader's PID. gen_take_leadership: a daemonizing program's child (after
 * setsid) takes over from `parent`, its parent; 1 if it did. */
int gen_leader(void);
int gen_take_leadership(int parent, int self);

/* What the generation hands over, as text (protocol.h: the listeners text);
 * rewritten whenever a socket to hand over appears. */
void gen_set_listeners(const char *text);

/* Wait until no connection is open, at most timeout_ms; 0 drained, -1 timed out. */
int gen_wait_drained(long timeout_ms);

#endif
