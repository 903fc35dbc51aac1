/* proxy_px.c - libproxy in a short-lived child process (see proxy_px.h). */
#include "proxy/proxy_px.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <proxy.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
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

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
        if (req->no_proxy != NULL)
            setenv("no_proxy", req->no_proxy, 1);
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
static enum dirconn_err parse_trace(char *trace, struct proxy_px_answer *ans)
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

static enum dirconn_err parse_list(char *text, struct proxy_px_answer *ans)
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

enum dirconn_err proxy_px_resolve(const struct proxy_px_request *req, struct proxy_px_answer *ans,
                                  struct dirconn_error *err)
{
    memset(ans, 0, sizeof(*ans));
    int tp[2] = {-1, -1}, rp[2] = {-1, -1};
    if (pipe(tp) != 0 || pipe(rp) != 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (tp[i] >= 0)
                close(tp[i]);
        }
        return dirconn_error_set(err, DIRCONN_EPROXY, "libproxy: pipe: %s", strerror(e));
    }
    fflush(NULL);
    pid_t pid = fork();
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
    /* Keep our ends out of any other child's hands. */
    fcntl(tp[0], F_SETFD, FD_CLOEXEC);
    fcntl(rp[0], F_SETFD, FD_CLOEXEC);
    struct px_buf trace = {.open = true}, list = {.open = true};
    int64_t deadline = mono_ms() + (req->timeout_ms > 0 ? req->timeout_ms : 20000);
    bool late = false, broken = false;
    while ((trace.open || list.open) && !broken) {
        struct pollfd fds[2];
        nfds_t n = 0;
        if (trace.open)
            fds[n++] = (struct pollfd){.fd = tp[0], .events = POLLIN};
        if (list.open)
            fds[n++] = (struct pollfd){.fd = rp[0], .events = POLLIN};
        int64_t left = deadline - mono_ms();
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
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
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
    if (e == DIRCONN_OK && trace.data != NULL && parse_trace(trace.data, ans) != DIRCONN_OK)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (e == DIRCONN_OK && list.data != NULL && parse_list(list.data, ans) != DIRCONN_OK)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (e == DIRCONN_OK && !ans->failed && ans->n == 0)
        e = dirconn_error_set(err, DIRCONN_EPROXY, "libproxy returned nothing for %s", req->url);
    free(trace.data);
    free(list.data);
    if (e != DIRCONN_OK && e != DIRCONN_EPROXY)
        proxy_px_answer_clear(ans);
    return e;
}
