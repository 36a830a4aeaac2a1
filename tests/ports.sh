# tests/ports.sh: loopback port helpers for the shell scripts (demo.sh,
# bench/run.sh, bench/http-cache-tests.sh). Source it; it defines:
#
#   free_port                  print a port that was free a moment ago
#   wait_port PORT [PIDFILE]   wait (10 s at most) until something accepts on
#                              127.0.0.1:PORT; fail at once when the process
#                              in PIDFILE is gone

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
	local port=$1 pidfile=${2:-} i
	for i in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		if [ -n "$pidfile" ]; then
			kill -0 "$(cat "$pidfile" 2>/dev/null || echo 0)" 2>/dev/null || return 1
		fi
		sleep 0.05
	done
	echo "nothing listens on 127.0.0.1:$port" >&2
	return 1
}
