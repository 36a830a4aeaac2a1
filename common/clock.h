/*
 * clock.h: the clocks the daemon and the function read, as seconds in a
 * double (fractions matter: timeouts in tests are sub-second), and the
 * conversion to the struct timeval libevent wants.
 */
#ifndef SSP_CLOCK_H
#define SSP_CLOCK_H

#include <sys/time.h>

/* CLOCK_MONOTONIC: for durations, deadlines and back-offs. */
double clock_mono(void);
/* CLOCK_REALTIME: for expirations given as wall-clock times. */
double clock_wall(void);
/* seconds as a timeval; negative durations become zero. */
struct timeval clock_tv(double seconds);

#endif
