/* platform.c - core dumps off, secret pages, reading secrets without echo. */
#define _DEFAULT_SOURCE /* madvise, MADV_DONTDUMP, mlock, MAP_ANONYMOUS */
#include "connector/core/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#endif

enum dirconn_err platform_disable_core_dumps(struct dirconn_error *err)
{
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return dirconn_error_set(err, DIRCONN_EFAIL, "setrlimit(RLIMIT_CORE, 0): %s",
                                 strerror(errno));
#ifdef __linux__
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return dirconn_error_set(err, DIRCONN_EFAIL, "prctl(PR_SET_DUMPABLE, 0): %s",
                                 strerror(errno));
#endif
    return DIRCONN_OK;
}

static size_t page_round(size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t p = page > 0 ? (size_t)page : 4096;
    return len == 0 ? p : (len + p - 1) / p * p;
}

void *platform_secure_alloc(size_t len)
{
    size_t n = page_round(len);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_DONTDUMP
    (void)madvise(p, n, MADV_DONTDUMP);
#endif
    (void)mlock(p, n); /* best effort: RLIMIT_MEMLOCK may forbid it */
    return p;
}

void platform_secure_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    size_t n = page_round(len);
    OPENSSL_cleanse(p, n);
    (void)munlock(p, n);
    munmap(p, n);
}

int64_t platform_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool platform_is_tty(int fd)
{
    return isatty(fd) == 1;
}

/* Read up to a newline (not stored) from fd into buf; returns the length, -1 on error, -2 if too
 * long. */
static long read_line_fd(int fd, char *buf, size_t max, bool stop_at_newline)
{
    size_t n = 0;
    bool too_long = false;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        if (stop_at_newline && c == '\n')
            break;
        if (n + 1 < max)
            buf[n++] = c;
        else
            too_long = true;
        c = 0;
    }
    buf[n] = '\0';
    return too_long ? -2 : (long)n;
}

static bool is_cc(const struct termios *t, int which, unsigned char c)
{
    return t->c_cc[which] != _POSIX_VDISABLE && t->c_cc[which] == c;
}

/*
 * Read one line from the terminal in non-canonical mode, doing the line editing
 * the terminal would: erase (removes one UTF-8 character) and kill. The
 * interrupt character, or end-of-file on an empty line, cancels. Returns the
 * length, -1 on error, -2 if too long, -3 when cancelled. `t` holds the
 * terminal's own settings (for its special characters).
 */
static long read_tty_line(int fd, char *buf, size_t max, const struct termios *t)
{
    size_t n = 0;
    bool too_long = false;
    for (;;) {
        unsigned char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0 || c == '\n' || c == '\r')
            break;
        if (is_cc(t, VINTR, c) || (is_cc(t, VEOF, c) && n == 0)) {
            OPENSSL_cleanse(buf, max);
            return -3;
        }
        if (is_cc(t, VERASE, c) || c == 0x7f || c == 0x08) {
            while (n > 0 && ((unsigned char)buf[n - 1] & 0xC0) == 0x80)
                buf[--n] = '\0';
            if (n > 0)
                buf[--n] = '\0';
        } else if (is_cc(t, VKILL, c)) {
            OPENSSL_cleanse(buf, max);
            n = 0;
        } else if (n + 1 < max) {
            buf[n++] = (char)c;
        } else {
            too_long = true;
        }
        c = 0;
    }
    buf[n] = '\0';
    return too_long ? -2 : (long)n;
}

static enum dirconn_err tty_read(const char *prompt, char *buf, size_t max,
                                 struct dirconn_error *err)
{
    struct termios old, quiet;
    if (tcgetattr(STDIN_FILENO, &old) != 0)
        return dirconn_error_set(err, DIRCONN_EIO, "cannot read the terminal settings: %s",
                                 strerror(errno));
    quiet = old;
    /* No echo; no signals, so that Ctrl-C cannot leave the terminal without echo (the
     * interrupt character arrives as data and cancels); byte by byte, so that it does
     * so at once. read_tty_line does the line editing. */
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ISIG | ICANON | IEXTEN);
    quiet.c_cc[VMIN] = 1;
    quiet.c_cc[VTIME] = 0;
    /* Echo off before the prompt appears, so nothing typed after it is echoed. */
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
        return dirconn_error_set(err, DIRCONN_EIO, "cannot turn off the terminal echo: %s",
                                 strerror(errno));
    fputs(prompt, stderr);
    fflush(stderr);
    long n = read_tty_line(STDIN_FILENO, buf, max, &old);
    int saved = errno;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
    if (n == -3)
        return dirconn_error_set(err, DIRCONN_ECANCELED, "interrupted; nothing was stored");
    if (n == -1)
        return dirconn_error_set(err, DIRCONN_EIO, "cannot read the terminal: %s", strerror(saved));
    if (n == -2)
        return dirconn_error_set(err, DIRCONN_EUSAGE, "the value is longer than %zu bytes",
                                 max - 1);
    return DIRCONN_OK;
}

static enum dirconn_err check_value(const char *buf, size_t n, struct dirconn_error *err)
{
    if (n == 0)
        return dirconn_error_set(err, DIRCONN_EUSAGE, "the value is empty");
    if (strlen(buf) != n)
        return dirconn_error_set(err, DIRCONN_EUSAGE, "the value contains a NUL byte");
    if (memchr(buf, '\n', n) != NULL || memchr(buf, '\r', n) != NULL)
        return dirconn_error_set(err, DIRCONN_EUSAGE, "the value spans more than one line");
    return DIRCONN_OK;
}

enum dirconn_err platform_read_secret(const char *prompt, const char *confirm, size_t max,
                                      char **out, struct dirconn_error *err)
{
    *out = NULL;
    char *buf = platform_secure_alloc(max);
    if (buf == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    enum dirconn_err e;
    if (platform_is_tty(STDIN_FILENO)) {
        e = tty_read(prompt, buf, max, err);
        if (e == DIRCONN_OK)
            e = check_value(buf, strlen(buf), err);
        if (e == DIRCONN_OK && confirm != NULL) {
            char *again = platform_secure_alloc(max);
            if (again == NULL) {
                e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
            } else {
                e = tty_read(confirm, again, max, err);
                if (e == DIRCONN_OK && strcmp(buf, again) != 0)
                    e = dirconn_error_set(err, DIRCONN_EUSAGE, "the two entries differ");
                platform_secure_free(again, max);
            }
        }
    } else {
        long n = read_line_fd(STDIN_FILENO, buf, max, false);
        if (n == -1) {
            e = dirconn_error_set(err, DIRCONN_EIO, "cannot read standard input: %s",
                                  strerror(errno));
        } else if (n == -2) {
            e = dirconn_error_set(err, DIRCONN_EUSAGE, "the value is longer than %zu bytes",
                                  max - 1);
        } else {
            size_t len = (size_t)n;
            if (len > 0 && buf[len - 1] == '\n')
                buf[--len] = '\0';
            if (len > 0 && buf[len - 1] == '\r')
                buf[--len] = '\0';
            e = check_value(buf, len, err);
        }
    }
    if (e != DIRCONN_OK) {
        platform_secure_free(buf, max);
        return e;
    }
    *out = buf;
    return DIRCONN_OK;
}

int platform_confirm(const char *question)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char line[16];
    if (write(fd, question, strlen(question)) < 0) {
        close(fd);
        return -1;
    }
    long n = read_line_fd(fd, line, sizeof(line), true);
    close(fd);
    if (n < 0)
        return 0;
    for (char *p = line; *p != '\0'; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    return strcmp(line, "y") == 0 || strcmp(line, "yes") == 0;
}

#ifdef __linux__
int platform_notify(const char *message)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t n = sendto(fd, message, strlen(message), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    int saved = errno;
    close(fd);
    errno = saved;
    return n < 0 ? -1 : 0;
}
#else
int platform_notify(const char *message)
{
    (void)message;
    return 0;
}
#endif
