/* The connection's state machine as data (conn-t.h: AWF_STATES): the states' names, the
 * transitions allowed between them (checked in every build by conn.c:proxy_conn_set_state, the
 * one place a state changes), and the names of the flags that cross states, printed when a
 * transition is refused. Pure: calls nothing in proxy/. */

#include <stdio.h>

#include "proxy/conn.h"

static const char *const state_names[AWF_CS_COUNT] = {
#define AWF_X(st, name, cd, ce, ud, ue, tmo, rd, dl, to) [AWF_CS_##st] = name,
    AWF_STATES(AWF_X)
#undef AWF_X
};

/* Allowed transitions, by source state: AWF_STATES' last column (conn-t.h says the paths). */
#define T(s) (1u << AWF_CS_##s)
static const unsigned transitions[AWF_CS_COUNT] = {
#define AWF_X(st, name, cd, ce, ud, ue, tmo, rd, dl, to) [AWF_CS_##st] = to,
    AWF_STATES(AWF_X)
#undef AWF_X
};
#undef T

bool proxy_conn_transition_ok(enum proxy_conn_state from, enum proxy_conn_state to)
{
    if ((unsigned)from >= AWF_CS_COUNT || (unsigned)to >= AWF_CS_COUNT)
        return false;
    return (transitions[from] & (1u << to)) != 0;
}

const char *proxy_conn_state_name(enum proxy_conn_state s)
{
    return (unsigned)s < AWF_CS_COUNT ? state_names[s] : "?";
}

static const char *const flag_names[AWF_CFB_COUNT] = {
#define AWF_X(name) [AWF_CFB_##name] = #name,
    AWF_CONN_FLAGS(AWF_X)
#undef AWF_X
};

char *proxy_conn_flags_str(uint64_t f, char *out, size_t cap)
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
