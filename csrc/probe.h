/* probe.h - --probe: the new generation proves itself on its twins (twin.h).
 *
 * `/bin/sh -c CMD` as --check runs, with HUPTIME_PROBE_ADDR (the first twin's
 * address: host:port, [::1]:port or @name) and HUPTIME_PROBE_ADDRS (every
 * listener, "shared=private" per line) added, bounded by --probe-timeout.
 */
#ifndef HUPTIME_PROBE_H
#define HUPTIME_PROBE_H

#include <stddef.h>

/* 1 if the probe exited 0; 0 otherwise, why says what happened and the last
 * lines of its output ("--probe exited with status 1: ..."), on one line. */
int probe_passes(char *why, size_t size);

#endif
