/*
 * startcost - how long fork + execve + exit of a program takes, with or without the shim.
 *
 *   cc -O2 -o startcost startcost.c
 *   ./startcost N PROGRAM [SHIM]
 *
 * Runs PROGRAM (no arguments) N times, one after the other: fork, execve, waitpid.
 * Each child gets this process's environment plus HUPTIME_MODE=fork and
 * HUPTIME_PID=<the child's own pid>; with SHIM it also gets LD_PRELOAD=SHIM, so the
 * shim is loaded and active in PROGRAM exactly as in a server that huptime started.
 * The environment is built before the loop; a child only writes its pid into it.
 * Prints the mean nanoseconds per start. Exits 1 if a start failed.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s N PROGRAM [SHIM]\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    const char *program = argv[2];
    const char *shim = argc == 4 ? argv[3] : NULL;
    size_t count = 0;
    while (environ[count])
        count++;

    char **env = calloc(count + 4, sizeof *env);
    static char pid_var[32] = "HUPTIME_PID=";
    static char preload[4096];
    size_t k = 0;
    for (size_t i = 0; i < count; i++)
        if ((strncmp(environ[i], "HUPTIME_", 8) != 0 || strncmp(environ[i], "HUPTIME_DEBUG=", 14) == 0) &&
            strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
            env[k++] = environ[i];
    env[k++] = "HUPTIME_MODE=fork";
    env[k++] = pid_var;
    if (shim) {
        snprintf(preload, sizeof preload, "LD_PRELOAD=%s", shim);
        env[k++] = preload;
    }
    env[k] = NULL;
    char *child_argv[] = { (char *)program, NULL };

    int failures = 0;
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            snprintf(pid_var + 12, sizeof pid_var - 12, "%ld", (long)getpid());
            execve(program, child_argv, env);
            _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failures++;
    }
    long long elapsed = now_ns() - start;
    printf("%lld\n", n > 0 ? elapsed / n : 0);
    if (failures) {
        fprintf(stderr, "startcost: %d of %ld starts failed\n", failures, n);
        return 1;
    }
    return 0;
}
