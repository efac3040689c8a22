#!/bin/sh
# Starts or stops a local nginx for `load --compare --target URL` (issue 15): a non-root nginx
# (Debian's /usr/sbin/nginx, or $NGINX) with its config in a temporary directory, one worker,
# on a free loopback port, answering POST / with a fixed Alibaba-like JSON.
#
#   bench/nginx.sh start   # prints the URL, e.g. http://127.0.0.1:40123
#   bench/nginx.sh url     # prints the URL of the running one
#   bench/nginx.sh stop
#
# State lives in $BENCH_NGINX_DIR (default: ${TMPDIR:-/tmp}/aliyun-guard-bench-nginx-$(id -u)).
set -eu

NGINX=${NGINX:-/usr/sbin/nginx}
DIR=${BENCH_NGINX_DIR:-${TMPDIR:-/tmp}/aliyun-guard-bench-nginx-$(id -u)}
WORKERS=${BENCH_NGINX_WORKERS:-1}

free_port() {
    # Ask the kernel for a free port (python3 if present, else probe a range with ss).
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    port=$(( 20000 + $$ % 20000 ))
    while ss -ltn 2>/dev/null | grep -q ":$port "; do port=$((port + 1)); done
    echo "$port"
}

running() {
    [ -f "$DIR/nginx.pid" ] && kill -0 "$(cat "$DIR/nginx.pid")" 2>/dev/null
}

case "${1:-}" in
start)
    if [ ! -x "$NGINX" ]; then
        echo "nginx not found at $NGINX (apt-get install nginx-light, or set NGINX)" >&2
        exit 1
    fi
    if running; then
        cat "$DIR/url"
        exit 0
    fi
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    port=$(free_port)
    cat >"$DIR/nginx.conf" <<CONF
worker_processes $WORKERS;
daemon on;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $DIR/body;
    proxy_temp_path $DIR/proxy;
    fastcgi_temp_path $DIR/fastcgi;
    uwsgi_temp_path $DIR/uwsgi;
    scgi_temp_path $DIR/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_buffer_size 64k;
    server {
        listen 127.0.0.1:$port;
        location = / {
            default_type "application/json;charset=utf-8";
            add_header x-acs-request-id 0D2D6E53-BENCH-4C6B-9E3A-6F3E3B9F9A01;
            return 200 '{"RequestId":"0D2D6E53-BENCH-4C6B-9E3A-6F3E3B9F9A01","Regions":{"Region":[{"RegionId":"cn-hangzhou","RegionEndpoint":"ecs.cn-hangzhou.aliyuncs.com","LocalName":"China (Hangzhou)"},{"RegionId":"cn-shanghai","RegionEndpoint":"ecs.cn-shanghai.aliyuncs.com","LocalName":"China (Shanghai)"}]}}';
        }
    }
}
CONF
    "$NGINX" -p "$DIR" -e "$DIR/error.log" -c "$DIR/nginx.conf"
    echo "http://127.0.0.1:$port" >"$DIR/url"
    # Wait (up to ~5 s) until it answers.
    i=0
    while [ $i -lt 50 ]; do
        if curl -sf -X POST -d x "http://127.0.0.1:$port/" >/dev/null 2>&1; then break; fi
        i=$((i + 1))
        sleep 0.1
    done
    cat "$DIR/url"
    ;;
url)
    running && cat "$DIR/url" || { echo "not running" >&2; exit 1; }
    ;;
stop)
    if running; then
        kill -QUIT "$(cat "$DIR/nginx.pid")"
    fi
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|url|stop" >&2
    exit 2
    ;;
esac
