//! netplugin's kernel side over rtnetlink (no `ip` commands): veth pairs, moving an end into a
//! container's network namespace, naming, MAC, MTU, addresses, routes, link state.
