/*
 * clock.c: monotonic and wall-clock seconds, and timevals for libevent.
 */
#include <time.h>

#include "clock.h"

static double
clock_read(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
clock_mono(void)
{
	return clock_read(CLOCK_MONOTONIC);
}

double
clock_wall(void)
{
	return clock_read(CLOCK_REALTIME);
}

struct timeval
clock_tv(double seconds)
{
	struct timeval tv;

	if (seconds < 0)
		seconds = 0;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	if (tv.tv_usec >= 1000000) {
		tv.tv_sec++;
		tv.tv_usec -= 1000000;
	}
	return tv;
}
