package nat

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
)

// What Debian's RFC 3489 client `stun` prints on its "Primary:" line.
var stunClientSays = map[netlab.Kind]string{
	netlab.EIMEIF:  "Independent Mapping, Independent Filter, preserves ports",
	netlab.EIMADF:  "Independent Mapping, Address Dependent Filter, preserves ports",
	netlab.EIMAPDF: "Independent Mapping, Port Dependent Filter, preserves ports",
	netlab.ADMAPDF: "Dependent Mapping, random port",
	netlab.APDM:    "Dependent Mapping, random port",
	netlab.None:    "Open",
	netlab.Blocked: "Blocked or could not reach STUN server",
}

// How turnutils_natdiscovery names RFC 4787 behaviours.
var natdiscoveryNames = map[netlab.Behavior]string{
	netlab.EndpointIndependent:     "Endpoint Independent",
	netlab.AddressDependent:        "Address Dependent",
	netlab.AddressAndPortDependent: "Address and Port Dependent",
}

var (
	ndMappingRE   = regexp.MustCompile(`(?m)^NAT with (.*) Mapping!$`)
	ndFilteringRE = regexp.MustCompile(`(?m)^NAT with (.*) Filtering!$`)
	ndReflexiveRE = regexp.MustCompile(`UDP reflexive addr: ([0-9.]+):`)
)

func firstMatch(re *regexp.Regexp, s string) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return "none"
}

// wantStunClient is the stun client's verdict for the lab.
func wantStunClient(tr netlab.Truth) string {
	w := stunClientSays[tr.Kind]
	if tr.Kind == netlab.None || tr.Kind == netlab.Blocked {
		return w
	}
	if tr.Hairpin {
		return w + ", will hairpin"
	}
	return w + ", no hairpin"
}

// wantNatdiscovery is turnutils_natdiscovery -m -f's verdict for the lab.
func wantNatdiscovery(tr netlab.Truth) string {
	switch tr.Kind {
	case netlab.Blocked:
		return "reflexive=none mapping=none filtering=none"
	case netlab.None: // it binds 0.0.0.0 and so never says "no NAT"
		return "reflexive=" + tr.Public.String() + " mapping=Endpoint Independent filtering=Endpoint Independent"
	}
	return "reflexive=" + tr.Public.String() + " mapping=" + natdiscoveryNames[tr.Mapping] +
		" filtering=" + natdiscoveryNames[tr.Filtering]
}

// runNatdiscovery runs turnutils_natdiscovery -m -f (plus extra flags) in
// the LAN against port.
func runNatdiscovery(lab *netlab.Lab, port int, extra ...string) (string, error) {
	args := append([]string{"60", "turnutils_natdiscovery", "-m", "-f"}, extra...)
	args = append(args, "-p", fmt.Sprint(port), netlab.Server1.String())
	out, err := lab.Command(netlab.LAN, "timeout", args...).CombinedOutput()
	return string(out), err
}

func natdiscoveryVerdict(out string) string {
	return "reflexive=" + firstMatch(ndReflexiveRE, out) + " mapping=" + firstMatch(ndMappingRE, out) +
		" filtering=" + firstMatch(ndFilteringRE, out)
}

// interopChecks run third-party clients against our server in lab.
func interopChecks(lab *netlab.Lab) []labCheck {
	tr := lab.Truth()
	return []labCheck{
		{"stun-client", func() func(t *testing.T) {
			out, _ := lab.Command(netlab.LAN, "stun", fmt.Sprintf("%v:%d", netlab.Server1, labOurPort)).CombinedOutput()
			var got string
			for _, l := range strings.Split(string(out), "\n") {
				if v, ok := strings.CutPrefix(l, "Primary:"); ok {
					got = strings.TrimSpace(v)
				}
			}
			return func(t *testing.T) {
				require.Equal(t, wantStunClient(tr), got, "stun output:\n%s", out)
			}
		}},
		{"natdiscovery", func() func(t *testing.T) {
			out, _ := runNatdiscovery(lab, labOurPort)
			return func(t *testing.T) {
				require.Equal(t, wantNatdiscovery(tr), natdiscoveryVerdict(out), "turnutils_natdiscovery output:\n%s", out)
			}
		}},
		{"natdiscovery-padding", func() func(t *testing.T) {
			out, _ := runNatdiscovery(lab, labOurPort, "-P")
			return func(t *testing.T) {
				require.Equal(t, wantNatdiscovery(tr), natdiscoveryVerdict(out), "turnutils_natdiscovery -P output:\n%s", out)
			}
		}},
	}
}

// interopLifetimeChecks: turnutils_natdiscovery's RFC 5780 lifetime test
// (RESPONSE-PORT) against our server: the binding answers after 3 s idle and
// is gone after 7 s with a 5 s NAT timeout.
func interopLifetimeChecks(lab *netlab.Lab) []labCheck {
	var checks []labCheck
	for _, tc := range []struct {
		idle  string
		alive bool
	}{{"3", true}, {"7", false}} {
		checks = append(checks, labCheck{"natdiscovery-lifetime-" + tc.idle + "s", func() func(t *testing.T) {
			out, _ := lab.Command(netlab.LAN, "timeout", "60", "turnutils_natdiscovery", "-t", "-T", tc.idle,
				"-p", fmt.Sprint(labOurPort), netlab.Server1.String()).CombinedOutput()
			return func(t *testing.T) {
				require.Equal(t, tc.alive, strings.Contains(string(out), "RFC 5780 response 2"), "output:\n%s", out)
			}
		}})
	}
	return checks
}
