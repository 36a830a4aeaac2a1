/*
 * sdnotify.h: the service readiness protocol of systemd (sd_notify), which
 * start-stop-daemon --notify-await speaks too: the master says READY=1 once
 * its sockets are bound and its workers forked, RELOADING=1/READY=1 around
 * a reload and STOPPING=1 when it stops. Without NOTIFY_SOCKET it does
 * nothing. No libsystemd needed: it is one datagram on a unix socket.
 */
#ifndef SSP_SDNOTIFY_H
#define SSP_SDNOTIFY_H

/* Send state ("READY=1", ...) to $NOTIFY_SOCKET; 0 sent or nothing to do, -1 error. */
int sdnotify(const char *state);

#endif
