/* The loop's counters for /metrics (proxy.h: struct awf_proxy_counters), and what a health
 * probe is. */
#include "common/counter.h"
#include "proxy/conn.h"

/* A container healthcheck (`nc -z localhost 3128`, AWF's) connects over loopback and closes
 * without a byte, every few seconds. Squid's configs in AWF keep those out of the access log
 * (`access_log ... !healthcheck_localhost`); so do we, in every mode, and count them instead.
 * A client that sends nothing and waits (a slowloris, a stuck agent) is not one: it is closed
 * by the header timeout and logged. */
static bool is_probe(const struct proxy_conn *c)
{
    return !(c->flags & AWF_CF_HEARD) && c->requests == 1 && c->tag == AWF_TAG_UNSET &&
           (c->flags & AWF_CF_CLIENT_EOF) && proxy_is_loopback(&c->peer.sa);
}

bool proxy_metrics_txn(struct proxy_conn *c, enum proxy_tag tag)
{
    struct awf_proxy_counters *m = c->px->ctr;
    if (is_probe(c)) {
        awf_counter_inc(&m->health_probes);
        return true;
    }
    enum awf_proxy_decision d = AWF_DECISION_ALLOWED;
    if (tag == AWF_TAG_TCP_DENIED)
        d = AWF_DECISION_DENIED;
    /* NONE_NONE with an upstream address is a CONNECT whose dial failed (Squid's row for it):
     * decided and allowed, not a request that never was. */
    else if ((tag == AWF_TAG_NONE_NONE && !(c->flags & AWF_CF_HAS_SERVER)) ||
             (c->flags & AWF_CF_OVERLOAD))
        d = AWF_DECISION_NONE;
    int st = c->status;
    awf_counter_inc(&m->requests[d][st >= 0 && st < 600 ? st : 600]);
    awf_counter_add(&m->bytes_from_clients, c->bytes_in);
    awf_counter_add(&m->bytes_to_clients, c->bytes_out);
    return false;
}
