/*
 * Unit tests of the log module's repeat limiter (connector/core/log.c): identical
 * lines within a window are counted, not written; the count is written with
 * the first identical line after the window, or when the window ended and
 * anything else is logged, or at close; lines stay whole when threads log
 * at once. stderr is captured into a temporary file; the window's clock is
 * injected.
 */
#include "connector/core/log.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static int64_t fake_now;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

/* stderr into a temporary file while a test runs */
static FILE *capture;
static int saved_fd = -1;

static void capture_start(void)
{
    fflush(stderr);
    capture = tmpfile();
    assert_non_null(capture);
    saved_fd = dup(STDERR_FILENO);
    assert_true(saved_fd >= 0);
    assert_true(dup2(fileno(capture), STDERR_FILENO) >= 0);
}

/* Stop capturing; the captured text (caller frees). */
static char *capture_stop(void)
{
    fflush(stderr);
    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    long n = ftell(capture);
    assert_true(n >= 0);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    rewind(capture);
    assert_int_equal(fread(buf, 1, (size_t)n, capture), (size_t)n);
    fclose(capture);
    return buf;
}

static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_repeats_counted(void **state)
{
    (void)state;
    struct log_sink sink;
    log_sink_init(&sink, "t", LOG_LEVEL_INFO, LOG_TARGET_STDERR);
    fake_now = 1000;
    assert_true(log_sink_limit_repeats(&sink, 60000, fake_clock, NULL));
    capture_start();
    for (int i = 0; i < 58; i++) {
        log_msg_limited(&sink, LOG_LEVEL_WARN, "cloud unreachable: %s", "connection refused");
        fake_now += 1000; /* one a second */
    }
    /* 58 s: one line so far; the 61st second's line carries the count of the 57 dropped */
    fake_now = 1000 + 60000;
    log_msg_limited(&sink, LOG_LEVEL_WARN, "cloud unreachable: %s", "connection refused");
    /* another text is written at once, and does not disturb the first one's window */
    log_msg_limited(&sink, LOG_LEVEL_WARN, "DIRECT failed for %s", "https://cloud");
    log_msg_limited(&sink, LOG_LEVEL_WARN, "DIRECT failed for %s", "https://cloud");
    /* the same text at another level is another line */
    log_msg_limited(&sink, LOG_LEVEL_ERROR, "DIRECT failed for %s", "https://cloud");
    /* below the level: nothing, not even counted */
    log_msg_limited(&sink, LOG_LEVEL_DEBUG, "quiet");
    log_sink_close(&sink); /* writes the pending count of the DIRECT line */
    char *out = capture_stop();
    assert_int_equal(count_lines(out, "t: warn: cloud unreachable: connection refused\n"), 1);
    assert_int_equal(count_lines(out, "t: warn: cloud unreachable: connection refused (repeated 57 "
                                      "times in the last 60 s)\n"),
                     1);
    assert_int_equal(count_lines(out, "t: warn: DIRECT failed for https://cloud\n"), 1);
    assert_int_equal(count_lines(out,
                                 "t: warn: DIRECT failed for https://cloud (repeated 1 time in "
                                 "the last 1 s)\n"),
                     1);
    assert_int_equal(count_lines(out, "t: error: DIRECT failed for https://cloud\n"), 1);
    assert_int_equal(count_lines(out, "quiet"), 0);
    assert_int_equal(count_lines(out, "\n"), 5);
    free(out);
}

/* A window that ends with no further identical line: its count comes with the next line. */
static void test_count_of_an_ended_window(void **state)
{
    (void)state;
    struct log_sink sink;
    log_sink_init(&sink, "t", LOG_LEVEL_INFO, LOG_TARGET_STDERR);
    fake_now = 0;
    assert_true(log_sink_limit_repeats(&sink, 10000, fake_clock, NULL));
    capture_start();
    for (int i = 0; i < 5; i++)
        log_msg_limited(&sink, LOG_LEVEL_WARN, "lease renew failed");
    fake_now = 30000; /* the outage ended; something else is logged later */
    log_msg_limited(&sink, LOG_LEVEL_WARN, "something else");
    /* after the window, the text is new again: written at once */
    log_msg_limited(&sink, LOG_LEVEL_WARN, "lease renew failed");
    log_sink_close(&sink);
    char *out = capture_stop();
    assert_int_equal(count_lines(out, "lease renew failed (repeated 4 times in the last 30 s)\n"),
                     1);
    assert_int_equal(count_lines(out, "t: warn: lease renew failed\n"), 2);
    assert_int_equal(count_lines(out, "\n"), 4);
    free(out);
}

/* Without a limiter, log_msg_limited writes every line. More texts than slots: none is lost. */
static void test_unlimited_and_many_texts(void **state)
{
    (void)state;
    struct log_sink sink;
    log_sink_init(&sink, "t", LOG_LEVEL_INFO, LOG_TARGET_STDERR);
    capture_start();
    log_msg_limited(&sink, LOG_LEVEL_WARN, "same");
    log_msg_limited(&sink, LOG_LEVEL_WARN, "same");
    fake_now = 0;
    assert_true(log_sink_limit_repeats(&sink, 60000, fake_clock, NULL));
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 40; i++) {
            log_msg_limited(&sink, LOG_LEVEL_WARN, "text %d", i);
            fake_now++;
        }
    log_sink_close(&sink);
    char *out = capture_stop();
    assert_int_equal(count_lines(out, "t: warn: same\n"), 2);
    /* 40 texts, 32 slots: the second round finds every text evicted before it comes back */
    assert_int_equal(count_lines(out, "t: warn: text 7\n"), 2);
    assert_int_equal(count_lines(out, "repeated"), 0);
    free(out);
}

struct hammer {
    struct log_sink *sink;
    int id;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 2000; i++)
        log_msg_limited(h->sink, LOG_LEVEL_WARN, "thread %d says the same", h->id % 2);
    return NULL;
}

/* Threads logging the same lines at once, and a reconfigure meanwhile: counted exactly. */
static void test_threads(void **state)
{
    (void)state;
    struct log_sink sink;
    log_sink_init(&sink, "t", LOG_LEVEL_INFO, LOG_TARGET_STDERR);
    fake_now = 0;
    assert_true(log_sink_limit_repeats(&sink, 60000, fake_clock, NULL));
    capture_start();
    pthread_t th[4];
    struct hammer h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){&sink, i};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    log_sink_reconfigure(&sink, LOG_LEVEL_DEBUG, LOG_TARGET_STDERR);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    log_sink_close(&sink);
    char *out = capture_stop();
    assert_int_equal(count_lines(out, "thread 0 says the same\n"), 1);
    assert_int_equal(count_lines(out, "thread 0 says the same (repeated 3999 times"), 1);
    assert_int_equal(count_lines(out, "thread 1 says the same (repeated 3999 times"), 1);
    assert_int_equal(count_lines(out, "\n"), 4);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeats_counted),
        cmocka_unit_test(test_count_of_an_ended_window),
        cmocka_unit_test(test_unlimited_and_many_texts),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
