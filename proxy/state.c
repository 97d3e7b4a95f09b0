/* The connection's state machine as data: the states' names, the transitions allowed between
 * them (checked in every build by awf_conn_set_state, the one place a state changes), and the
 * names of the flags that cross states, printed when a transition is refused. */

#include <stdio.h>
#include <stdlib.h>

#include "common/diag.h"
#include "proxy/conn.h"

static const char *const state_names[AWF_CS_COUNT] = {
    [AWF_CS_SNIFF] = "sniff",
    [AWF_CS_PEEK] = "peek",
    [AWF_CS_HEAD] = "head",
    [AWF_CS_RESOLVING] = "resolving",
    [AWF_CS_CONNECTING] = "connecting",
    [AWF_CS_FORWARD] = "forward",
    [AWF_CS_TUNNEL] = "tunnel",
    [AWF_CS_BUMP_CLIENT] = "bump-client",
    [AWF_CS_BUMP_UP] = "bump-upstream",
    [AWF_CS_FLUSH] = "flush",
    [AWF_CS_CLOSING] = "closing",
};

#define T(s) (1u << AWF_CS_##s)
/* Allowed transitions, by source state. ssl-bump: HEAD goes to PEEK for a CONNECT that may be
 * bumped (the ClientHello decides before anything is dialled), PEEK to BUMP_CLIENT (the
 * client's handshake, then HEAD for the requests inside; from RESOLVING when the decision on
 * intercepted TLS waited for the name's addresses), CONNECTING to BUMP_UP (the upstream's
 * handshake, then FORWARD). PEEK comes from SNIFF (intercepted TLS: the ClientHello
 * names the target, then it is resolved) or from CONNECTING (a CONNECT tunnel whose ClientHello
 * is checked before any client byte goes upstream). CONNECTING may
 * restart itself (next address); FORWARD goes back to HEAD (keep-alive), to CONNECTING (a pooled
 * upstream failed before answering) or to TUNNEL (101 Switching Protocols). */
static const unsigned transitions[AWF_CS_COUNT] = {
    [AWF_CS_SNIFF] = T(HEAD) | T(PEEK) | T(FLUSH) | T(CLOSING),
    [AWF_CS_HEAD] = T(RESOLVING) | T(PEEK) | T(FLUSH) | T(CLOSING),
    [AWF_CS_PEEK] = T(RESOLVING) | T(TUNNEL) | T(BUMP_CLIENT) | T(FLUSH) | T(CLOSING),
    [AWF_CS_RESOLVING] = T(CONNECTING) | T(BUMP_CLIENT) | T(FLUSH) | T(CLOSING),
    [AWF_CS_CONNECTING] =
        T(CONNECTING) | T(PEEK) | T(FORWARD) | T(TUNNEL) | T(BUMP_UP) | T(FLUSH) | T(CLOSING),
    [AWF_CS_BUMP_CLIENT] = T(HEAD) | T(FLUSH) | T(CLOSING),
    [AWF_CS_BUMP_UP] = T(FORWARD) | T(FLUSH) | T(CLOSING),
    [AWF_CS_FORWARD] = T(HEAD) | T(CONNECTING) | T(TUNNEL) | T(FLUSH) | T(CLOSING),
    [AWF_CS_TUNNEL] = T(CLOSING),
    [AWF_CS_FLUSH] = T(CLOSING),
    [AWF_CS_CLOSING] = 0,
};
#undef T

bool awf_conn_transition_ok(enum awf_conn_state from, enum awf_conn_state to)
{
    if ((unsigned)from >= AWF_CS_COUNT || (unsigned)to >= AWF_CS_COUNT)
        return false;
    return (transitions[from] & (1u << to)) != 0;
}

const char *awf_conn_state_name(enum awf_conn_state s)
{
    return (unsigned)s < AWF_CS_COUNT ? state_names[s] : "?";
}

static const char *const flag_names[AWF_CFB_COUNT] = {
#define AWF_X(name) [AWF_CFB_##name] = #name,
    AWF_CONN_FLAGS(AWF_X)
#undef AWF_X
};

char *awf_conn_flags_str(uint64_t f, char *out, size_t cap)
{
    size_t o = 0;
    if (!cap)
        return out;
    out[0] = '\0';
    for (unsigned i = 0; i < 64 && f; i++) {
        uint64_t bit = UINT64_C(1) << i;
        if (!(f & bit))
            continue;
        f &= ~bit;
        char hex[24];
        const char *name = i < AWF_CFB_COUNT ? flag_names[i] : NULL;
        if (!name) {
            snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)bit);
            name = hex;
        }
        int n = snprintf(out + o, cap - o, "%s%s", o ? "|" : "", name);
        if (n < 0 || (size_t)n >= cap - o)
            break; /* cut: what fits is printed */
        o += (size_t)n;
    }
    return out;
}

void awf_conn_set_state(struct awf_conn *c, enum awf_conn_state to)
{
    /* An invalid transition is a bug that would leave handles or the log line inconsistent:
     * stop here in every build rather than run on in an unknown state. The flags say what the
     * connection was doing. */
    if (!awf_conn_transition_ok(c->state, to)) {
        char flags[700];
        awf_diag("BUG: connection state %s -> %s, flags %s", awf_conn_state_name(c->state),
                 awf_conn_state_name(to), awf_conn_flags_str(c->flags, flags, sizeof(flags)));
        abort();
    }
    c->state = to;
    c->state_since = uv_now(c->px->loop);
    if (to != AWF_CS_CLOSING)
        awf_conn_arm_timer(c);
}
