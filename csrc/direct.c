/* direct.c - whether the connection path may skip libc's cancellation bookkeeping. */
#include "direct.h"

int direct_off;

long direct_failed(long r)
{
    errno = (int)-r;
    return -1;
}
