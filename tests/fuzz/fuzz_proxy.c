/*
 * fuzz_proxy.c - what the connector reads about proxies: libproxy's trace
 * and result list as the child process writes them (proxy_px_parse_trace,
 * proxy_px_parse_list), the PAC answer found in the trace
 * (proxy_pac_directives: "PROXY a:1; SOCKS b:2; DIRECT"), each proxy URL
 * libproxy returns turned into a libcurl route (proxy_route_from_libproxy)
 * and redacted for messages (proxy_redact).
 *
 * Input: parts separated by lines "%%" (fuzz_util.h): the trace text, the
 * result list ("P <url>" lines, "!"), then a PAC answer and a proxy URL
 * given directly.
 */
#include "proxy/proxy.h"
#include "proxy/proxy_px.h"
#include "fuzz_util.h"

#include <stdint.h>
#include <stdlib.h>

static void route(const char *answer)
{
    char *r = NULL;
    if (proxy_route_from_libproxy(answer, &r)) {
        free(proxy_redact(r));
        free(r);
    }
    free(proxy_redact(answer));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *parts[4];
    size_t lens[4];
    size_t n = fuzz_parts(data, size, parts, lens, 4);
    struct proxy_px_answer ans = {0};
    bool garbage = false;
    if (n > 0 && proxy_px_parse_trace(parts[0], &ans) == DIRCONN_OK && ans.pac_answer != NULL)
        (void)proxy_pac_directives(ans.pac_answer, &garbage);
    if (n > 1 && proxy_px_parse_list(parts[1], &ans) == DIRCONN_OK) {
        for (size_t i = 0; i < ans.n; i++)
            route(ans.proxies[i]);
    }
    if (n > 2)
        (void)proxy_pac_directives(parts[2], &garbage);
    if (n > 3)
        route(parts[3]);
    proxy_px_answer_clear(&ans);
    fuzz_parts_free(parts, n);
    return 0;
}
