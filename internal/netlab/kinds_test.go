package netlab

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// What Debian's RFC 3489 client `stun` prints for each kind (Primary: line).
var stunSays = map[Kind]string{
	EIMEIF:  "Independent Mapping, Independent Filter, preserves ports, no hairpin",
	EIMADF:  "Independent Mapping, Address Dependent Filter, preserves ports, no hairpin",
	EIMAPDF: "Independent Mapping, Port Dependent Filter, preserves ports, no hairpin",
	ADMAPDF: "Dependent Mapping, random port, no hairpin",
	APDM:    "Dependent Mapping, random port, no hairpin",
	None:    "Open",
	Blocked: "Blocked or could not reach STUN server",
}

// How coturn's turnutils_natdiscovery names RFC 4787 behaviours.
var natdiscoveryName = map[Behavior]string{
	EndpointIndependent:     "Endpoint Independent",
	AddressDependent:        "Address Dependent",
	AddressAndPortDependent: "Address and Port Dependent",
}

func stunVerdict(t *testing.T, lab *Lab) string {
	out, _ := lab.Command(LAN, "stun", Server1.String()).CombinedOutput() // exit code encodes the type
	return field(string(out), "Primary:")
}

var (
	ndMapping   = regexp.MustCompile(`(?m)^NAT with (.*) Mapping!$`)
	ndFiltering = regexp.MustCompile(`(?m)^NAT with (.*) Filtering!$`)
	ndReflexive = regexp.MustCompile(`UDP reflexive addr: ([0-9.]+):`)
)

func first(re *regexp.Regexp, s string) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return "none"
}

// natdiscovery runs coturn's RFC 5780 client against coturn in the lab.
func natdiscovery(t *testing.T, lab *Lab, args ...string) string {
	args = append(append(args, "-p", "3480"), Server1.String())
	out, _ := lab.Command(LAN, "timeout", append([]string{"60", "turnutils_natdiscovery"}, args...)...).CombinedOutput()
	return string(out)
}

// TestKindsAgreeWithTools proves every NAT kind is what Truth says, with two
// third-party clients as judges: the RFC 3489 `stun` client against stund,
// and coturn's RFC 5780 turnutils_natdiscovery against coturn.
func TestKindsAgreeWithTools(t *testing.T) {
	t.Parallel()
	RequireTools(t, "stun", "turnutils_natdiscovery")
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			lab := New(t, Config{Kind: kind, Stund: true, Coturn: true})
			truth := lab.Truth()
			require.Equal(t, stunSays[kind], stunVerdict(t, lab), "stun (RFC 3489)")

			out := natdiscovery(t, lab, "-m", "-f")
			got := "reflexive=" + first(ndReflexive, out) + " mapping=" + first(ndMapping, out) + " filtering=" + first(ndFiltering, out)
			var want string
			switch kind {
			case Blocked:
				want = "reflexive=none mapping=none filtering=none"
			case None: // natdiscovery binds 0.0.0.0 and so never says "no NAT"
				want = "reflexive=" + truth.Public.String() + " mapping=Endpoint Independent filtering=Endpoint Independent"
			default:
				want = "reflexive=" + truth.Public.String() + " mapping=" + natdiscoveryName[truth.Mapping] +
					" filtering=" + natdiscoveryName[truth.Filtering]
			}
			require.Equal(t, want, got, "turnutils_natdiscovery -m -f:\n%s", out)
		})
	}
}

// TestCGNATInSeries checks NATs in series: the client sees the stricter
// behaviour and the CGN's public address, while the home router itself
// reports 100.64.0.2 over UPnP and NAT-PMP.
func TestCGNATInSeries(t *testing.T) {
	t.Parallel()
	RequireTools(t, "stun", "upnpc", "natpmpc", "turnutils_natdiscovery")
	t.Run("eim-apdf behind eim-eif CGN with UPnP", func(t *testing.T) {
		t.Parallel()
		lab := New(t, Config{Kind: EIMAPDF, CGNAT: true, UPnP: true, Stund: true})
		truth := lab.Truth()
		require.Equal(t, RouterCGN, truth.RouterWAN)
		require.Equal(t, Public, truth.Public)
		require.Equal(t, stunSays[EIMAPDF], stunVerdict(t, lab))
		out, _ := lab.Command(LAN, "stun", Server1.String(), "-v", "-p", "44440").CombinedOutput()
		require.Equal(t, "203.0.113.1:44440", field(string(out), "MappedAddress ="), "stun -v")
		require.Equal(t, "100.64.0.2", field(runTool(t, lab, LAN, "upnpc", "-i", "-s"), "ExternalIPAddress ="))
		require.Equal(t, "100.64.0.2", field(runTool(t, lab, LAN, "natpmpc", "-g", RouterLAN.String()), "Public IP address :"))
	})
	t.Run("eim-eif behind eim-apdf CGN", func(t *testing.T) {
		t.Parallel()
		lab := New(t, Config{Kind: EIMEIF, CGNKind: EIMAPDF, Stund: true})
		require.Equal(t, AddressAndPortDependent, lab.Truth().Filtering)
		require.Equal(t, stunSays[EIMAPDF], stunVerdict(t, lab))
	})
	t.Run("apdm behind eim-eif CGN", func(t *testing.T) {
		t.Parallel()
		lab := New(t, Config{Kind: APDM, CGNAT: true, Coturn: true})
		out := natdiscovery(t, lab, "-m", "-f")
		require.Equal(t, "Address and Port Dependent", first(ndMapping, out), out)
		require.Equal(t, "203.0.113.1", first(ndReflexive, out), out)
	})
}

func TestTruthStrings(t *testing.T) {
	t.Parallel()
	tr := truthOf(Config{Kind: EIMADF, Hairpin: true}.normalized())
	require.True(t, strings.HasPrefix(tr.String(), "mapping=endpoint-independent filtering=address-dependent hairpin=true"))
	tr = truthOf(Config{Kind: EIMEIF, CGNKind: APDM}.normalized())
	require.Equal(t, AddressAndPortDependent, tr.Mapping)
	require.False(t, tr.PortPreservation)
	require.Equal(t, RouterCGN, tr.RouterWAN)
}
