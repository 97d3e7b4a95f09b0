/* The connection's llhttp parsers: the request parser (proxy/http.c's head callbacks, then only
 * the body's framing once the request is decided), the response parser's setup (forward.c and
 * parent.c each bring their callbacks), and one way to run either. Calls nothing above http.c:
 * conn.c starts each request's parser here. */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "common/error.h"
#include "proxy/conn.h"

/* The request parser's data is c->rd, which proxy/http.c's head callbacks use; c is around it. */
static struct proxy_conn *req_conn(llhttp_t *p)
{
    return (struct proxy_conn *)(void *)((char *)p->data - offsetof(struct proxy_conn, rd));
}

static int on_req_message_complete(llhttp_t *p)
{
    struct proxy_conn *c = req_conn(p);
    c->flags |= AWF_CF_MSG_END;
    return HPE_PAUSED; /* what follows is the next request */
}

static const llhttp_settings_t req_settings = {
    AWF_HTTP_HEAD_CALLBACKS,
    .on_message_complete = on_req_message_complete,
};

/* Trailer fields of a chunked body arrive through the same field callbacks as the head. They
 * are not forwarded as fields of their own (the body bytes pass as they came), so only their
 * size is checked, against the same limit as a head. */
static int on_trailer_piece(llhttp_t *p, const char *at, size_t n)
{
    struct proxy_conn *c = req_conn(p);
    (void)at;
    c->head_bytes += n;
    if (c->head_bytes <= c->set->limits.header_bytes)
        return 0;
    c->rd.err = AWF_E_TOO_BIG;
    return HPE_USER;
}

static const llhttp_settings_t req_body_settings = {
    .on_header_field = on_trailer_piece,
    .on_header_value = on_trailer_piece,
    .on_message_complete = on_req_message_complete,
};

void proxy_conn_req_parser_init(struct proxy_conn *c)
{
    llhttp_init(&c->req, HTTP_REQUEST, &req_settings);
    c->req.data = &c->rd;
    c->rd.head = &c->head;
}

void proxy_request_body_only(struct proxy_conn *c)
{
    /* llhttp reads its callbacks from the settings pointer at each call; swapping it between
     * two executions is what llhttp_init would do, without resetting the parser's state. */
    c->req.settings = (void *)&req_body_settings;
}

llhttp_errno_t proxy_conn_parse(struct proxy_conn *c, llhttp_t *p, const char *d, size_t n,
                                size_t *used)
{
    return proxy_http_execute(&c->rd, p, d, n, used);
}

int proxy_conn_resp_init(struct proxy_conn *c, const llhttp_settings_t *settings)
{
    if (!c->resp) {
        c->resp = malloc(sizeof(*c->resp)); /* owned by c: see struct proxy_resp */
        if (!c->resp)
            return -ENOMEM;
    }
    llhttp_init(&c->resp->parser, HTTP_RESPONSE, settings);
    c->resp->parser.data = c;
    c->resp->mime[0] = '\0';
    c->resp->hname_len = 0;
    c->resp->hname_ct = false;
    return 0;
}
