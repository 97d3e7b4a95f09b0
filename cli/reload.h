#ifndef AWF_CLI_RELOAD_H
#define AWF_CLI_RELOAD_H

/* What a reload (SIGHUP) can and cannot change in a running proxy. The policy (lists, rules,
 * ports, address ranges, timeouts but the DNS one, limits, tunnel and TLS switches, parent) and
 * the hosts file are applied live; what was bound, opened or started at start-up (listeners,
 * log outputs, threads, resolver settings, the DNS forwarder, the admin listener, the pid file,
 * cache_log, the ssl-bump leaf cache's bound) keeps its start-up value until a restart. The
 * ssl-bump CA files are read again by every reload (cli/run.c). */

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

/* Writes into out (NUL-terminated, cut to outlen) the comma-separated policy keys whose value
 * differs between the running settings and the reloaded ones but that a reload cannot apply,
 * e.g. "listen, logs, threads"; "" when there are none. bump_running says whether ssl-bump's
 * CA was loaded at start (turning it on later needs a restart; off and on again does not).
 * Returns how many keys it named. */
size_t cli_reload_restart_keys(const struct awf_settings *running, const struct awf_settings *next,
                               bool bump_running, char *out, size_t outlen);

#endif
