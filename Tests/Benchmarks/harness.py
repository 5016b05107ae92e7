"""What the soak and limits scripts share: free ports, waiting for a listener, a process's RSS, and an
nginx backend serving fixed files from a temporary folder."""
import os, re, shutil, socket, subprocess, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, ".build/release/tracetap")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def rss_kib(pid):
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))


def nginx_backend(work, files, connections=4096):
    """nginx (one worker) on a free port serving `files` ({path: size}) from work/www; returns (port, process)."""
    www = os.path.join(work, "www")
    for name, size in files.items():
        os.makedirs(os.path.dirname(os.path.join(www, name)), exist_ok=True)
        open(os.path.join(www, name), "wb").write(b"x" * size)
    port = free_port()
    open(f"{work}/nginx.conf", "w").write(f"""worker_processes 1; daemon off; pid {work}/nginx.pid; error_log {work}/nginx.log warn;
worker_rlimit_nofile {connections + 1000}; events {{ worker_connections {connections}; }}
http {{ access_log off; keepalive_requests 1000000; client_body_temp_path {work}/cb; proxy_temp_path {work}/pt;
 fastcgi_temp_path {work}/ft; uwsgi_temp_path {work}/ut; scgi_temp_path {work}/st;
 server {{ listen 127.0.0.1:{port} backlog=4096; root {www}; location / {{ default_type text/plain; }} }} }}""")
    process = subprocess.Popen(["/usr/sbin/nginx", "-p", work, "-c", f"{work}/nginx.conf"], stderr=subprocess.DEVNULL)
    assert wait_port(port), "nginx did not start"
    return port, process


def stop_all(processes, work):
    """Ends the processes this script started (newest first, by PID) and removes its folder."""
    for p in reversed(processes):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    shutil.rmtree(work, ignore_errors=True)
