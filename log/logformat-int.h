#ifndef AWF_LOG_LOGFORMAT_INT_H
#define AWF_LOG_LOGFORMAT_INT_H

/* What the logformat compiler hands the renderer, and the renderer the writer; shared only inside
 * log/ (and with its tests). A compiled format is a flat array of ops, each a literal run or one
 * % code with its modifiers resolved, so rendering a line is one pass over the array and never
 * re-reads the format string. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/log.h"

enum lf_code {
    LF_LITERAL,
    LF_TS,             /* %ts   seconds since the epoch */
    LF_TU,             /* %tu   millisecond part */
    LF_TR,             /* %tr   response time, ms */
    LF_TL,             /* %tl   local time, strftime */
    LF_TG,             /* %tg   GMT, strftime */
    LF_CLIENT_ADDR,    /* %>a */
    LF_CLIENT_PORT,    /* %>p */
    LF_SERVER_ADDR,    /* %<a */
    LF_SERVER_PORT,    /* %<p */
    LF_LOCAL_ADDR,     /* %la */
    LF_LOCAL_PORT,     /* %lp */
    LF_CLI_LOCAL_ADDR, /* %>la: as %la, but known for a connection without a request too */
    LF_CLI_LOCAL_PORT, /* %>lp */
    LF_REQ_HEADER,     /* %{Name}>h */
    LF_REP_HEADER,     /* %{Name}<h */
    LF_VERSION,        /* %rv */
    LF_CLI_VERSION,    /* %>rv: "-" when no request was read */
    LF_METHOD,         /* %rm %>rm */
    LF_URL,            /* %ru %>ru */
    LF_DOMAIN,         /* %>rd */
    LF_STATUS,         /* %>Hs */
    LF_UP_STATUS,      /* %<Hs */
    LF_TAG,            /* %Ss */
    LF_HIER,           /* %Sh */
    LF_BYTES_TO_CLI,   /* %<st */
    LF_BYTES_FROM_CLI, /* %>st */
    LF_USER,           /* %un */
    LF_MIME,           /* %mt */
};

/* How a value's bytes are protected in the line (see README.md, "Escaping"). */
enum lf_esc {
    LF_ESC_URL,     /* default outside quotes: %XX for SP, controls, '"', bytes >= 0x7f */
    LF_ESC_UNSAFE,  /* default outside quotes for headers, %>rd, %>ru: LF_ESC_URL and Squid's
                       RFC 1738 unsafe characters < > # { } | \ ^ ~ [ ] ` ' (as Squid does) */
    LF_ESC_QUOTED,  /* between "..." or %"code: \" \\ \r \n \t, \xHH for other controls */
    LF_ESC_BRACKET, /* %[code: %XX for % [ ] \ " SP and bytes outside 33..126 */
    LF_ESC_RAW,     /* %'code: only control bytes are %XX (a line can never be forged) */
    LF_ESC_JSON,    /* JSON formats: JSON string escapes, invalid UTF-8 as \u00XX */
};

struct lf_op {
    enum lf_code code;
    enum lf_esc esc;
    bool left;          /* '-': pad on the right */
    bool zero;          /* '0': pad with zeros */
    uint32_t width_min; /* 0: none */
    uint32_t width_max; /* 0: none; strings only, cut before escaping */
    size_t arg;         /* offset in awf_log_format.pool: literal text, header name, strftime */
    size_t arg_len;     /* pool holds a NUL after every arg */
    bool has_arg;
};

struct awf_log_format {
    struct lf_op *ops;
    size_t nops;
    char *pool; /* owned: literal runs and {args}, each NUL-terminated */
    size_t pool_len;
    bool json; /* the format starts with '{': every value is JSON-escaped */
};

/* render.c: renders one line (with its '\n') into buf; returns the length it needed (like
 * snprintf: if it is >= cap the line was cut). strip_query renders a URL's query as "?". The
 * writer calls it for each output; the tests and the fuzz target call it directly. */
size_t log_format_render(const struct awf_log_format *f, const struct awf_log_record *r,
                         bool strip_query, char *buf, size_t cap);

#endif
