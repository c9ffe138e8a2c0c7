package netplan

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if c := DefaultConfig(); c.ClusterCIDR != DefaultClusterCIDR || c.SliceBits != 24 || c.ServiceCIDR != DefaultServiceCIDR ||
		c.NodePorts != DefaultNodePorts || c.ClusterDomain != "cluster.local" {
		t.Fatalf("defaults: %+v", c)
	}
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{name: "domain normalised", cfg: Config{ClusterDomain: "Corp.Example."}},
		{name: "IPv6 cluster range", cfg: Config{ClusterCIDR: pfx("fd00::/64")}, want: "--cluster-cidr fd00::/64: only IPv4"},
		{name: "host bits", cfg: Config{ClusterCIDR: pfx("10.244.1.0/16")}, want: "has host bits set (did you mean 10.244.0.0/16?)"},
		{name: "slices larger than the range", cfg: Config{ClusterCIDR: pfx("10.244.0.0/24"), SliceBits: 16}, want: "slice size /16"},
		{name: "slices too small", cfg: Config{SliceBits: 31}, want: "slice size /31"},
		{name: "tiny service range", cfg: Config{ServiceCIDR: pfx("10.96.0.0/31")}, want: "--service-cidr 10.96.0.0/31 is too small"},
		{name: "overlapping ranges", cfg: Config{ServiceCIDR: pfx("10.244.128.0/20")}, want: "overlap"},
		{name: "reversed ports", cfg: Config{NodePorts: PortRange{32000, 31000}}, want: "--service-node-port-range 32000-31000"},
		{name: "negative retention", cfg: Config{SliceRetention: -1}, want: "negative"},
		{name: "bad domain", cfg: Config{ClusterDomain: "under_score.local"}, want: "--cluster-domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in   string
		want PortRange
		err  bool
	}{
		{in: "30000-32767", want: PortRange{30000, 32767}},
		{in: " 8000 - 8100 ", want: PortRange{8000, 8100}},
		{in: "30080", want: PortRange{30080, 30080}},
		{in: "0-10", err: true},
		{in: "20-10", err: true},
		{in: "1-70000", err: true},
		{in: "a-b", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		got, err := ParsePortRange(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParsePortRange(%q) = %v, %v", tt.in, got, err)
		}
		if err == nil && got.String() != strings.ReplaceAll(strings.TrimSpace(tt.in), " ", "") && tt.in != "30080" {
			t.Errorf("String() = %s", got)
		}
	}
}
