#ifndef AWF_PROXY_CONN_T_H
#define AWF_PROXY_CONN_T_H

/* Types shared inside proxy/ only (HAProxy's foo-t.h / foo.h split): what a connection logs and
 * answers. The functions are in proxy/conn.h. */

#include <errno.h>

/* Squid's result codes (%Ss) the proxy logs, each with the form it takes when a side dropped
 * early (AWF_CF_ABORTED). A tag is an enum value, so a mistyped one does not compile, and its
 * name is spelt once, here. */
#define AWF_TAGS(X)                                                                                \
    X(NONE_NONE, NONE_NONE)                                                                        \
    X(TCP_MISS, TCP_MISS_ABORTED)                                                                  \
    X(TCP_MISS_ABORTED, TCP_MISS_ABORTED)                                                          \
    X(TCP_TUNNEL, TCP_TUNNEL_ABORTED)                                                              \
    X(TCP_TUNNEL_ABORTED, TCP_TUNNEL_ABORTED)                                                      \
    X(TCP_DENIED, TCP_DENIED)                                                                      \
    X(TCP_DENIED_OPAQUE, TCP_DENIED_OPAQUE)

enum awf_tag {
    AWF_TAG_UNSET, /* nothing decided yet: logged NONE_NONE error:transaction-end-before-headers */
#define AWF_X(name, aborted) AWF_TAG_##name,
    AWF_TAGS(AWF_X)
#undef AWF_X
        AWF_TAG_COUNT
};

/* Squid's hierarchy codes (%Sh): how the upstream was reached. */
#define AWF_HIERS(X)                                                                               \
    X(NONE, HIER_NONE)                                                                             \
    X(DIRECT, HIER_DIRECT)                                                                         \
    X(ORIGINAL_DST, ORIGINAL_DST)                                                                  \
    X(PARENT, FIRSTUP_PARENT)

enum awf_hier {
#define AWF_X(name, squid) AWF_HIER_##name,
    AWF_HIERS(AWF_X)
#undef AWF_X
        AWF_HIER_COUNT
};

/* The number after an answer's error page is the caller's errno (awf_answer_errno). */
#define AWF_ANS_ERRNO (-1)

/* The proxy's own answers: the status, Squid's error page named in X-Squid-Error with the
 * number after it, the log tag, and one extra header line (NULL: none). proxy/README's Answers
 * table lists the same rows; tests/unit/proxy/test_answer.c checks one against the other. */
#define AWF_ANSWERS(X)                                                                             \
    X(DENIED, 403, ERR_ACCESS_DENIED, 0, TCP_DENIED, NULL)                                         \
    X(DNS_FAIL, 503, ERR_DNS_FAIL, 0, TCP_MISS, NULL)                                              \
    X(CONNECT_FAIL, 503, ERR_CONNECT_FAIL, AWF_ANS_ERRNO, TCP_MISS, NULL)                          \
    X(CONNECT_NO_TUNNEL, 503, ERR_CONNECT_FAIL, AWF_ANS_ERRNO, NONE_NONE, NULL)                    \
    X(NOMEM, 503, ERR_CONNECT_FAIL, ENOMEM, TCP_MISS, NULL)                                        \
    X(PARENT_FAIL, 502, ERR_CONNECT_FAIL, AWF_ANS_ERRNO, TCP_MISS, NULL)                           \
    X(TIMEOUT, 504, ERR_READ_TIMEOUT, 0, TCP_MISS_ABORTED, NULL)                                   \
    X(UP_CLOSED, 502, ERR_ZERO_SIZE_OBJECT, 0, TCP_MISS_ABORTED, NULL)                             \
    X(UP_RESET, 502, ERR_READ_ERROR, AWF_ANS_ERRNO, TCP_MISS_ABORTED, NULL)                        \
    X(UP_WRITE_FAIL, 502, ERR_READ_ERROR, AWF_ANS_ERRNO, TCP_MISS, NULL)                           \
    X(INVALID_RESP, 502, ERR_INVALID_RESP, 0, TCP_MISS_ABORTED, NULL)                              \
    X(INVALID_REQ, 400, ERR_INVALID_REQ, 0, NONE_NONE, NULL)                                       \
    X(INVALID_BODY, 400, ERR_INVALID_REQ, 0, TCP_MISS_ABORTED, NULL)                               \
    X(TOO_BIG, 431, ERR_TOO_BIG, 0, NONE_NONE, NULL)                                               \
    X(OVERLOAD, 503, ERR_CANNOT_FORWARD, 0, NONE_NONE, "Retry-After: 1")                           \
    X(TLS_FAIL, 503, ERR_SECURE_CONNECT_FAIL, 0, TCP_MISS, NULL)

enum awf_ans {
#define AWF_X(name, status, page, arg, tag, hdr) AWF_ANS_##name,
    AWF_ANSWERS(AWF_X)
#undef AWF_X
        AWF_ANS_COUNT
};

/* One row of AWF_ANSWERS. */
struct awf_answer_def {
    int status;
    const char *page; /* Squid's error page, e.g. "ERR_ACCESS_DENIED" */
    int arg;          /* the number after it, or AWF_ANS_ERRNO */
    enum awf_tag tag;
    const char *header; /* one extra header line without CRLF, or NULL */
};

#endif
