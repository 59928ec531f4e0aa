/* probe.h - --probe: the new generation proves itself on its twins (twin.h).
 *
 * --probe: `/bin/sh -c CMD` as --check runs, with HUPTIME_PROBE_ADDR (the first
 * twin's address: host:port, [::1]:port or @name) and HUPTIME_PROBE_ADDRS (every
 * listener, "shared=private" per line) added. --probe-http PATH: the shim itself
 * sends GET PATH (HTTP/1.0) to the first twin and wants a 2xx status line. Both
 * bounded by --probe-timeout.
 */
#ifndef HUPTIME_PROBE_H
#define HUPTIME_PROBE_H

#include <stddef.h>

/* 1 if the probe passed; 0 otherwise, why says what happened on one line: "--probe
 * exited with status 1: " and its last output lines, or "--probe-http GET /healthz
 * on 127.0.0.1:41234: HTTP/1.1 500 Internal Server Error". */
int probe_passes(char *why, size_t size);

#endif
