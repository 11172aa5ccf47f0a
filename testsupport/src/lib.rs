//! Test fixtures that use the real thing: Open vSwitch instances in network namespaces, etcd servers, with cleanup on drop.
