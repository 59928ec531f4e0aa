/* preflight.h - whether a restart may begin: checks made before anything starts.
 *
 * Refused, with one log line and a `failed` event for generation `next`, when the
 * generation has no socket to hand over or more than a handoff carries, when a
 * process it did not fork (fork+exec) holds one of its listeners (held.h), or when
 * --check fails.
 */
#ifndef HUPTIME_PREFLIGHT_H
#define HUPTIME_PREFLIGHT_H

/* n: what reg_handed_over() returned. 1: the restart may begin. */
int preflight(int n, int next);

#endif
