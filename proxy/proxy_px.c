/* proxy_px.c - libproxy in a short-lived child process (see proxy_px.h). */
#include "proxy/proxy_px.h"
#include "connector/core/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <proxy.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Largest trace or answer read from the child. */
#define PX_MAX_OUTPUT (256u * 1024)

/* Variables that make libproxy prefer other sources than the one mode pac gives it. */
static const char *const px_cleared_vars[] = {"http_proxy",
                                              "HTTP_PROXY",
                                              "https_proxy",
                                              "HTTPS_PROXY",
                                              "ftp_proxy",
                                              "FTP_PROXY",
                                              "no_proxy",
                                              "NO_PROXY",
                                              "XDG_CURRENT_DESKTOP",
                                              "DESKTOP_SESSION",
                                              "GNOME_DESKTOP_SESSION_ID",
                                              "KDE_FULL_SESSION",
                                              "KDE_SESSION_VERSION",
                                              NULL};

/* The proxy variables libproxy reads in mode auto. */
static const char *const px_proxy_vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy",
                                            "HTTPS_PROXY", NULL};

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* The child: its own environment, libproxy's trace on fd 2, the list on res_fd. Never returns. */
static void run_child(const struct proxy_px_request *req, int trace_fd, int res_fd)
{
    if (dup2(trace_fd, STDERR_FILENO) < 0)
        _exit(3);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
    }
    if (req->pac_url != NULL) {
        for (size_t i = 0; px_cleared_vars[i] != NULL; i++)
            unsetenv(px_cleared_vars[i]);
        setenv("http_proxy", req->pac_url, 1);
        setenv("https_proxy", req->pac_url, 1);
    } else {
        /* Mode auto: a proxy without a scheme is http://, as curl reads it (libproxy would
         * not understand "host:port"); no_proxy is matched by libcurl in the parent. */
        for (size_t i = 0; px_proxy_vars[i] != NULL; i++) {
            const char *v = getenv(px_proxy_vars[i]);
            if (v != NULL && v[0] != '\0' && strstr(v, "://") == NULL) {
                char buf[4096];
                snprintf(buf, sizeof(buf), "http://%s", v);
                setenv(px_proxy_vars[i], buf, 1);
            }
        }
        unsetenv("no_proxy");
        unsetenv("NO_PROXY");
    }
    setenv("_PX_DEBUG", "1", 1);
    pxProxyFactory *pf = px_proxy_factory_new();
    char **list = pf != NULL ? px_proxy_factory_get_proxies(pf, req->url) : NULL;
    if (list == NULL) {
        write_all(res_fd, "!\n", 2);
    } else {
        for (size_t i = 0; list[i] != NULL; i++) {
            write_all(res_fd, "P ", 2);
            write_all(res_fd, list[i], strlen(list[i]));
            write_all(res_fd, "\n", 1);
        }
        px_proxy_factory_free_proxies(list);
    }
    /* No px_proxy_factory_free, no exit handlers: the process ends here. */
    _exit(0);
}

struct px_buf {
    char *data;
    size_t len;
    bool open;
};

static int buf_read(int fd, struct px_buf *b)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0) {
        b->open = false;
        return 0;
    }
    if (b->len + (size_t)n + 1 > PX_MAX_OUTPUT)
        return 0; /* drop the excess, keep reading to EOF */
    char *p = realloc(b->data, b->len + (size_t)n + 1);
    if (p == NULL)
        return -1;
    memcpy(p + b->len, chunk, (size_t)n);
    b->data = p;
    b->len += (size_t)n;
    b->data[b->len] = '\0';
    return 0;
}

void proxy_px_answer_clear(struct proxy_px_answer *ans)
{
    for (size_t i = 0; i < ans->n; i++)
        free(ans->proxies[i]);
    free(ans->proxies);
    free(ans->config);
    free(ans->pac_answer);
    memset(ans, 0, sizeof(*ans));
}

/* Read libproxy's trace: the configuration used, PAC read failures, the PAC's answer. */
enum dirconn_err proxy_px_parse_trace(char *trace, struct proxy_px_answer *ans)
{
    bool in_config = false;
    for (char *line = trace, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (in_config && line[0] == '\t') {
            if (ans->config == NULL && (ans->config = strdup(line + 1)) == NULL)
                return DIRCONN_ENOMEM;
            continue;
        }
        in_config = strcmp(line, "Config is: ") == 0 || strcmp(line, "Config is:") == 0;
        if (strcmp(line, "Unable to download PAC!") == 0) {
            ans->pac_unreadable = true;
        } else if (strcmp(line, "Unable to find a required pacrunner!") == 0) {
            ans->no_runner = true;
        } else if (strcmp(line, "No PAC found...") == 0) {
            ans->wpad_failed = true;
        } else if (strncmp(line, "Pacrunner returned: ", 20) == 0 ||
                   strcmp(line, "Pacrunner returned:") == 0) {
            ans->pac_ran = true;
            free(ans->pac_answer);
            ans->pac_answer = strdup(line[19] == '\0' ? "" : line + 20);
            if (ans->pac_answer == NULL)
                return DIRCONN_ENOMEM;
        }
    }
    return DIRCONN_OK;
}

enum dirconn_err proxy_px_parse_list(char *text, struct proxy_px_answer *ans)
{
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (strcmp(line, "!") == 0) {
            ans->failed = true;
        } else if (strncmp(line, "P ", 2) == 0) {
            char **v = realloc(ans->proxies, (ans->n + 1) * sizeof(*v));
            if (v == NULL)
                return DIRCONN_ENOMEM;
            ans->proxies = v;
            if ((v[ans->n] = strdup(line + 2)) == NULL)
                return DIRCONN_ENOMEM;
            ans->n++;
        }
    }
    return DIRCONN_OK;
}

/* ---- the pre-forked launcher ------------------------------------------------------------ */

/*
 * fork(2) in a multi-threaded process only copies the calling thread: a lock
 * another thread held at that moment (the dynamic loader's, which libproxy
 * takes to load its modules while a libcurl resolver thread loads an NSS
 * module) stays locked forever in the child. So programs that run threads
 * start a launcher while they are still single-threaded (proxy_px_prefork);
 * the launcher forks each libproxy child from its own single thread and hands
 * the child's two pipes back over a UNIX socket (SCM_RIGHTS).
 */
static int launcher_fd = -1;
static pid_t launcher_pid = -1;
static pthread_mutex_t launcher_lock = PTHREAD_MUTEX_INITIALIZER;

static int read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Send the child's pid and its two pipe ends. */
static int send_fds(int sock, int64_t pid, int fd1, int fd2)
{
    struct iovec iov = {&pid, sizeof(pid)};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof(u.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = {fd1, fd2};
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    ssize_t w;
    while ((w = sendmsg(sock, &m, 0)) < 0 && errno == EINTR)
        ;
    return w == (ssize_t)sizeof(pid) ? 0 : -1;
}

static int recv_fds(int sock, int64_t *pid, int *fd1, int *fd2)
{
    struct iovec iov = {pid, sizeof(*pid)};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof(u.buf);
    ssize_t r;
    while ((r = recvmsg(sock, &m, 0)) < 0 && errno == EINTR)
        ;
    struct cmsghdr *c = r == (ssize_t)sizeof(*pid) ? CMSG_FIRSTHDR(&m) : NULL;
    if (c == NULL || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(2 * sizeof(int)))
        return -1;
    int fds[2];
    memcpy(fds, CMSG_DATA(c), sizeof(fds));
    *fd1 = fds[0];
    *fd2 = fds[1];
    return 0;
}

/* The launcher: one request (length + JSON) at a time, one child each. Never returns. */
static void launcher_main(int sock)
{
    signal(SIGCHLD, SIG_IGN); /* children are reaped by the system */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    for (;;) {
        uint32_t len = 0;
        if (read_full(sock, &len, sizeof(len)) != 0 || len == 0 || len > 65536)
            _exit(0); /* the program ended */
        char *text = malloc(len + 1);
        if (text == NULL || read_full(sock, text, len) != 0)
            _exit(0);
        text[len] = '\0';
        json_error_t jerr;
        json_t *o = json_loads(text, 0, &jerr);
        free(text);
        struct proxy_px_request req = {
            .url = json_string_value(json_object_get(o, "url")),
            .pac_url = json_string_value(json_object_get(o, "pac_url")),
            .timeout_ms = (int64_t)json_integer_value(json_object_get(o, "timeout_ms")),
        };
        int tp[2] = {-1, -1}, rp[2] = {-1, -1};
        pid_t pid = -1;
        if (req.url != NULL && pipe(tp) == 0 && pipe(rp) == 0)
            pid = fork();
        if (pid == 0) {
            close(sock);
            close(tp[0]);
            close(rp[0]);
            run_child(&req, tp[1], rp[1]);
        }
        json_decref(o);
        if (tp[1] >= 0)
            close(tp[1]);
        if (rp[1] >= 0)
            close(rp[1]);
        int rc = pid > 0 ? send_fds(sock, (int64_t)pid, tp[0], rp[0]) : send_fds(sock, -1, 0, 0);
        if (tp[0] >= 0)
            close(tp[0]);
        if (rp[0] >= 0)
            close(rp[0]);
        if (rc != 0)
            _exit(0);
    }
}

enum dirconn_err proxy_px_prefork(struct dirconn_error *err)
{
    if (launcher_fd >= 0)
        return DIRCONN_OK;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return dirconn_error_set(err, DIRCONN_EPROXY, "libproxy launcher: socketpair: %s",
                                 strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return dirconn_error_set(err, DIRCONN_EPROXY, "libproxy launcher: fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(sv[0]);
        launcher_main(sv[1]);
    }
    close(sv[1]);
    fcntl(sv[0], F_SETFD, FD_CLOEXEC);
    launcher_fd = sv[0];
    launcher_pid = pid;
    return DIRCONN_OK;
}

void proxy_px_prefork_stop(void)
{
    if (launcher_fd < 0)
        return;
    close(launcher_fd); /* the launcher reads EOF and exits */
    launcher_fd = -1;
    while (waitpid(launcher_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    launcher_pid = -1;
}

/* Ask the launcher for a child; false when there is no launcher (or it is gone). */
static bool launch(const struct proxy_px_request *req, pid_t *pid, int *tfd, int *rfd)
{
    pthread_mutex_lock(&launcher_lock);
    bool ok = false;
    if (launcher_fd >= 0) {
        json_t *o = json_pack("{s:s, s:s?, s:I}", "url", req->url, "pac_url", req->pac_url,
                              "timeout_ms", (json_int_t)req->timeout_ms);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        uint32_t len = text != NULL ? (uint32_t)strlen(text) : 0;
        int64_t child = -1;
        if (text != NULL &&
            send(launcher_fd, &len, sizeof(len), MSG_NOSIGNAL) == (ssize_t)sizeof(len) &&
            send(launcher_fd, text, len, MSG_NOSIGNAL) == (ssize_t)len &&
            recv_fds(launcher_fd, &child, tfd, rfd) == 0) {
            if (child > 0) {
                *pid = (pid_t)child;
                ok = true;
            } else {
                close(*tfd);
                close(*rfd);
            }
        } else {
            /* The launcher is gone: fork directly from now on. */
            close(launcher_fd);
            launcher_fd = -1;
        }
        free(text);
    }
    pthread_mutex_unlock(&launcher_lock);
    return ok;
}

enum dirconn_err proxy_px_resolve(const struct proxy_px_request *req, struct proxy_px_answer *ans,
                                  struct dirconn_error *err)
{
    memset(ans, 0, sizeof(*ans));
    int tp[2] = {-1, -1}, rp[2] = {-1, -1};
    pid_t pid = -1;
    bool launched = launch(req, &pid, &tp[0], &rp[0]);
    if (!launched) {
        if (pipe(tp) != 0 || pipe(rp) != 0) {
            int e = errno;
            for (int i = 0; i < 2; i++) {
                if (tp[i] >= 0)
                    close(tp[i]);
            }
            return dirconn_error_set(err, DIRCONN_EPROXY, "libproxy: pipe: %s", strerror(e));
        }
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
            int e = errno;
            close(tp[0]);
            close(tp[1]);
            close(rp[0]);
            close(rp[1]);
            return dirconn_error_set(err, DIRCONN_EPROXY, "libproxy: fork: %s", strerror(e));
        }
        if (pid == 0) {
            close(tp[0]);
            close(rp[0]);
            run_child(req, tp[1], rp[1]);
        }
        close(tp[1]);
        close(rp[1]);
    }
    /* Keep our ends out of any other child's hands. */
    fcntl(tp[0], F_SETFD, FD_CLOEXEC);
    fcntl(rp[0], F_SETFD, FD_CLOEXEC);
    struct px_buf trace = {.open = true}, list = {.open = true};
    int64_t deadline = platform_monotonic_ms() + (req->timeout_ms > 0 ? req->timeout_ms : 20000);
    bool late = false, broken = false;
    while ((trace.open || list.open) && !broken) {
        struct pollfd fds[2];
        nfds_t n = 0;
        if (trace.open)
            fds[n++] = (struct pollfd){.fd = tp[0], .events = POLLIN};
        if (list.open)
            fds[n++] = (struct pollfd){.fd = rp[0], .events = POLLIN};
        int64_t left = deadline - platform_monotonic_ms();
        if (left <= 0) {
            late = true;
            break;
        }
        int r = poll(fds, n, (int)(left > 1000 ? 1000 : left));
        if (r < 0 && errno != EINTR) {
            broken = true;
            break;
        }
        for (nfds_t i = 0; r > 0 && i < n; i++) {
            if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
                continue;
            struct px_buf *b = fds[i].fd == tp[0] ? &trace : &list;
            if (buf_read(fds[i].fd, b) != 0)
                broken = true;
        }
    }
    close(tp[0]);
    close(rp[0]);
    if (late || broken)
        kill(pid, SIGKILL);
    int status = 0; /* a launcher's child is reaped by the launcher: its pipes tell */
    while (!launched && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    enum dirconn_err e = DIRCONN_OK;
    if (late)
        e = dirconn_error_set(err, DIRCONN_EPROXY,
                              "libproxy did not answer for %s within %lld ms (WPAD or PAC "
                              "script too slow)",
                              req->url, (long long)(req->timeout_ms > 0 ? req->timeout_ms : 20000));
    else if (broken)
        e = dirconn_error_set(err, DIRCONN_EPROXY, "libproxy: reading its answer failed");
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        e = dirconn_error_set(err, DIRCONN_EPROXY,
                              "libproxy failed while resolving %s (child %s %d)", req->url,
                              WIFSIGNALED(status) ? "killed by signal" : "exit status",
                              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    if (e == DIRCONN_OK && trace.data != NULL &&
        proxy_px_parse_trace(trace.data, ans) != DIRCONN_OK)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (e == DIRCONN_OK && list.data != NULL && proxy_px_parse_list(list.data, ans) != DIRCONN_OK)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (e == DIRCONN_OK && !ans->failed && ans->n == 0)
        e = dirconn_error_set(err, DIRCONN_EPROXY, "libproxy returned nothing for %s", req->url);
    free(trace.data);
    free(list.data);
    if (e != DIRCONN_OK && e != DIRCONN_EPROXY)
        proxy_px_answer_clear(ans);
    return e;
}
