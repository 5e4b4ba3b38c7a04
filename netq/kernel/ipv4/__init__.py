"""net/ipv4 and include/net/route.h: what IP decides for an outgoing skb."""
