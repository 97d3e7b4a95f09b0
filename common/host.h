#ifndef AWF_COMMON_HOST_H
#define AWF_COMMON_HOST_H

/* The longest host name, in characters, that any module takes: a DNS name is at most 255 bytes
 * on the wire (RFC 1035 §2.3.4, each label's length byte and the root's zero byte included),
 * which is 253 characters of text without the trailing dot. One number for the proxy, the
 * policy, the resolver and the certificate names, so a name one of them takes is never refused
 * by the next. What a buffer holds beyond the name is added where it is declared: +1 for the
 * NUL, +1 for a trailing dot kept as the client sent it. IPv6 literals, brackets included (at
 * most 47 characters), are far shorter. The wire form has its own limit (AWF_DNS_WIRE_NAME_MAX,
 * dns/wire.h: 255 bytes). */
#define AWF_HOST_MAX 253

#endif
