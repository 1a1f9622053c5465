package ldaptest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// OIDs of Active Directory's matching rules and capability.
const (
	OIDInChain          = "1.2.840.113556.1.4.1941" // LDAP_MATCHING_RULE_IN_CHAIN
	OIDBitAnd           = "1.2.840.113556.1.4.803"  // LDAP_MATCHING_RULE_BIT_AND
	OIDActiveDirectory  = "1.2.840.113556.1.4.800"  // LDAP_CAP_ACTIVE_DIRECTORY_OID
	DefaultADRangeLimit = 1500                      // MaxValRange of a domain controller
)

// ADServer is a loopback LDAP server (the LDAPv3 wire protocol over TCP on 127.0.0.1) that
// does the two things Active Directory does and slapd cannot:
//
//   - LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941) in extensible-match filters:
//     (member:1.2.840.113556.1.4.1941:=DN) matches the groups DN is in, directly or through
//     groups nested in them; (memberOf:1.2.840.113556.1.4.1941:=DN) the entries in group DN,
//     the same way. Cycles end the walk.
//   - Ranged retrieval: a multi-valued attribute with more than RangeLimit values comes back
//     as "member;range=0-1499" (its first RangeLimit values), and a request for
//     "member;range=LOW-*" returns the next RangeLimit values from LOW, named
//     "member;range=LOW-HIGH", or "member;range=LOW-*" for the last ones (AD's MaxValRange).
//
// Around them it serves what a directory client needs and no more: simple bind, base,
// one-level and subtree searches over Entries with AND, OR, NOT, equality (case-blind;
// objectCategory=person matches AD's CN=Person,CN=Schema,... form), presence and
// LDAP_MATCHING_RULE_BIT_AND (userAccountControl's ACCOUNTDISABLE bit) filters, the attribute
// list ("*", "1.1", names), the paged results control (RFC 2696), and a root DSE that lists
// Active Directory's capability. Anything else (other operations, substring filters, other
// matching rules) is answered unwillingToPerform, so a test cannot pass on something the
// server only pretends to do.
type ADServer struct {
	// Addr is host:port; URL is ldap://Addr.
	Addr, URL string

	l       net.Listener
	opts    ADOptions
	entries []*adEntry
	wg      sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]bool
	filters []string // every search filter, as go-ldap writes it
	ranged  int      // searches that asked for a range of values
}

// ADOptions shape an ADServer.
type ADOptions struct {
	Entries []Entry
	// BindDN and Password are the one account that may bind (empty: BindDN,
	// BindPassword). Anonymous binds are refused, as Active Directory refuses searches
	// without a bind.
	BindDN, Password string
	// RangeLimit is how many values of one attribute an answer holds (0:
	// DefaultADRangeLimit).
	RangeLimit int
}

type adEntry struct {
	dn    *goldap.DN
	raw   string
	attrs []Attr
}

func (e *adEntry) values(name string) []string {
	for _, a := range e.attrs {
		if strings.EqualFold(a.Name, name) {
			return a.Values
		}
	}
	return nil
}

// StartAD serves o.Entries on a free 127.0.0.1 port until Close.
func StartAD(o ADOptions) (*ADServer, error) {
	if o.BindDN == "" {
		o.BindDN, o.Password = BindDN, BindPassword
	}
	if o.RangeLimit <= 0 {
		o.RangeLimit = DefaultADRangeLimit
	}
	s := &ADServer{opts: o, conns: map[net.Conn]bool{}}
	for _, e := range o.Entries {
		dn, err := goldap.ParseDN(e.DN)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.DN, err)
		}
		s.entries = append(s.entries, &adEntry{dn: dn, raw: e.DN, attrs: merged(e.Attrs)})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.l, s.Addr = l, l.Addr().String()
	s.URL = "ldap://" + s.Addr
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Close stops the server and drops every connection.
func (s *ADServer) Close() error {
	err := s.l.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Filters returns the filters of the searches served so far.
func (s *ADServer) Filters() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.filters)
}

// RangedSearches counts the searches that asked for a range of an attribute's values.
func (s *ADServer) RangedSearches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ranged
}

func (s *ADServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

// LDAP result codes the server answers with.
const (
	resultSuccess            = 0
	resultProtocolError      = 2
	resultNoSuchObject       = 32
	resultInvalidCredentials = 49
	resultUnwilling          = 53
)

func (s *ADServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	bound := false
	for {
		p, err := ber.ReadPacket(c)
		if err != nil {
			return
		}
		if len(p.Children) < 2 {
			return
		}
		id := intOf(p.Children[0])
		op := p.Children[1]
		var out []*ber.Packet
		switch op.Tag {
		case goldap.ApplicationBindRequest:
			code, msg := s.bind(op)
			bound = code == resultSuccess
			out = append(out, message(id, result(goldap.ApplicationBindResponse, code, msg), nil))
		case goldap.ApplicationUnbindRequest:
			return
		case goldap.ApplicationAbandonRequest:
			continue
		case goldap.ApplicationSearchRequest:
			if !bound && !isRootDSE(op) {
				out = append(out, message(id, result(goldap.ApplicationSearchResultDone, 1, "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection."), nil))
				break
			}
			out = s.search(id, op, p)
		default:
			resp := uint8(op.Tag) + 1
			if op.Tag == goldap.ApplicationExtendedRequest {
				resp = goldap.ApplicationExtendedResponse
			}
			out = append(out, message(id, result(resp, resultUnwilling, "not supported by this test server"), nil))
		}
		for _, m := range out {
			if _, err := c.Write(m.Bytes()); err != nil {
				return
			}
		}
	}
}

func (s *ADServer) bind(op *ber.Packet) (int, string) {
	if len(op.Children) < 3 {
		return resultProtocolError, "malformed bind"
	}
	name, pw := op.Children[1].Data.String(), op.Children[2].Data.String()
	if op.Children[2].ClassType != ber.ClassContext || op.Children[2].Tag != 0 {
		return resultUnwilling, "only simple binds"
	}
	if strings.EqualFold(name, s.opts.BindDN) && pw == s.opts.Password {
		return resultSuccess, ""
	}
	return resultInvalidCredentials, "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e"
}

func isRootDSE(op *ber.Packet) bool {
	return len(op.Children) > 1 && op.Children[0].Data.String() == "" && intOf(op.Children[1]) == 0
}

// search answers one search request: its entries, then the done message with the paging
// control when the request carried one.
func (s *ADServer) search(id int64, op, msg *ber.Packet) []*ber.Packet {
	if len(op.Children) < 8 {
		return []*ber.Packet{message(id, result(goldap.ApplicationSearchResultDone, resultProtocolError, "malformed search"), nil)}
	}
	base, scope := op.Children[0].Data.String(), intOf(op.Children[1])
	filter := op.Children[6]
	var attrs []string
	for _, a := range op.Children[7].Children {
		attrs = append(attrs, a.Data.String())
	}
	text, _ := goldap.DecompileFilter(filter)
	s.mu.Lock()
	s.filters = append(s.filters, text)
	s.mu.Unlock()
	done := func(code int, why string, ctl *ber.Packet) []*ber.Packet {
		return []*ber.Packet{message(id, result(goldap.ApplicationSearchResultDone, code, why), ctl)}
	}

	if base == "" && scope == 0 {
		e := &adEntry{attrs: []Attr{{"objectClass", []string{"top"}},
			{"supportedCapabilities", []string{OIDActiveDirectory, "1.2.840.113556.1.4.1670"}},
			{"defaultNamingContext", []string{BaseDN}}}}
		return append([]*ber.Packet{message(id, s.entry(e, attrs), nil)}, done(resultSuccess, "", nil)...)
	}
	baseDN, err := goldap.ParseDN(base)
	if err != nil {
		return done(resultProtocolError, "invalid base DN", nil)
	}
	var hits []*adEntry
	found := false
	for _, e := range s.entries {
		in := false
		switch scope {
		case 0:
			in = e.dn.EqualFold(baseDN)
		case 1:
			in = len(e.dn.RDNs) == len(baseDN.RDNs)+1 && baseDN.AncestorOfFold(e.dn)
		default:
			in = e.dn.EqualFold(baseDN) || baseDN.AncestorOfFold(e.dn)
		}
		found = found || e.dn.EqualFold(baseDN)
		if !in {
			continue
		}
		ok, err := s.match(filter, e)
		if err != nil {
			return done(resultUnwilling, err.Error(), nil)
		}
		if ok {
			hits = append(hits, e)
		}
	}
	if !found && scope == 0 {
		return done(resultNoSuchObject, "0000208D: NameErr: DSID-0310028D, problem 2001 (NO_OBJECT)", nil)
	}

	// Paged results: the cookie is the offset of the next page.
	var pageCtl *ber.Packet
	if paging := pagingOf(msg); paging != nil && paging.PagingSize > 0 {
		from := 0
		if len(paging.Cookie) > 0 {
			if from, err = strconv.Atoi(string(paging.Cookie)); err != nil || from < 0 || from > len(hits) {
				return done(resultProtocolError, "invalid paging cookie", nil)
			}
		}
		to := min(from+int(paging.PagingSize), len(hits))
		next := &goldap.ControlPaging{}
		if to < len(hits) {
			next.Cookie = []byte(strconv.Itoa(to))
		}
		hits = hits[from:to]
		pageCtl = next.Encode()
	}
	out := make([]*ber.Packet, 0, len(hits)+1)
	for _, e := range hits {
		out = append(out, message(id, s.entry(e, attrs), nil))
	}
	return append(out, done(resultSuccess, "", pageCtl)...)
}

func pagingOf(msg *ber.Packet) *goldap.ControlPaging {
	if len(msg.Children) < 3 || msg.Children[2].ClassType != ber.ClassContext || msg.Children[2].Tag != 0 {
		return nil
	}
	for _, c := range msg.Children[2].Children {
		if ctl, err := goldap.DecodeControl(c); err == nil {
			if p, ok := ctl.(*goldap.ControlPaging); ok {
				return p
			}
		}
	}
	return nil
}

// entry writes a SearchResultEntry with the requested attributes, ranging any attribute
// with more values than the range limit.
func (s *ADServer) entry(e *adEntry, want []string) *ber.Packet {
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationSearchResultEntry, nil, "Search Result Entry")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, e.raw, "DN"))
	list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	all := len(want) == 0 || slices.Contains(want, "*")
	add := func(name string, vals []string) {
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attribute")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "Type"))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "Values")
		for _, v := range vals {
			set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "Value"))
		}
		a.AppendChild(set)
		list.AppendChild(a)
	}
	for _, a := range e.attrs {
		if !all && !slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(w, a.Name) }) {
			// A range of it may be asked for instead.
			for _, w := range want {
				if low, ok := rangeStart(w, a.Name); ok {
					s.mu.Lock()
					s.ranged++
					s.mu.Unlock()
					if name, vals, ok := s.valueRange(a.Name, a.Values, low); ok {
						add(name, vals)
					}
				}
			}
			continue
		}
		if len(a.Values) > s.opts.RangeLimit {
			name, vals, _ := s.valueRange(a.Name, a.Values, 0)
			add(name, vals)
			continue
		}
		add(a.Name, a.Values)
	}
	p.AppendChild(list)
	return p
}

// rangeStart reads "attr;range=LOW-*" or "attr;range=LOW-HIGH" asked for attr.
func rangeStart(want, attr string) (int, bool) {
	name, opt, ok := strings.Cut(want, ";")
	if !ok || !strings.EqualFold(name, attr) {
		return 0, false
	}
	r, ok := strings.CutPrefix(strings.ToLower(opt), "range=")
	if !ok {
		return 0, false
	}
	lo, _, ok := strings.Cut(r, "-")
	n, err := strconv.Atoi(lo)
	return n, ok && err == nil && n >= 0
}

// valueRange is the range of values from low that one answer holds, named as Active
// Directory names it; false when low is past the last value.
func (s *ADServer) valueRange(attr string, vals []string, low int) (string, []string, bool) {
	if low >= len(vals) {
		return "", nil, false
	}
	high := low + s.opts.RangeLimit - 1
	if high >= len(vals)-1 {
		return fmt.Sprintf("%s;range=%d-*", attr, low), vals[low:], true
	}
	return fmt.Sprintf("%s;range=%d-%d", attr, low, high), vals[low : high+1], true
}

// match evaluates a filter (its BER form) on an entry.
func (s *ADServer) match(f *ber.Packet, e *adEntry) (bool, error) {
	switch f.Tag {
	case goldap.FilterAnd, goldap.FilterOr:
		for _, c := range f.Children {
			ok, err := s.match(c, e)
			if err != nil {
				return false, err
			}
			if ok == (f.Tag == goldap.FilterOr) {
				return ok, nil
			}
		}
		return f.Tag == goldap.FilterAnd, nil
	case goldap.FilterNot:
		if len(f.Children) != 1 {
			return false, errors.New("malformed NOT filter")
		}
		ok, err := s.match(f.Children[0], e)
		return !ok, err
	case goldap.FilterPresent:
		return len(e.values(f.Data.String())) > 0 || strings.EqualFold(f.Data.String(), "objectClass"), nil
	case goldap.FilterEqualityMatch:
		if len(f.Children) != 2 {
			return false, errors.New("malformed equality filter")
		}
		attr, want := f.Children[0].Data.String(), f.Children[1].Data.String()
		for _, v := range e.values(attr) {
			if strings.EqualFold(v, want) || (strings.EqualFold(attr, "objectCategory") && categoryIs(v, want)) {
				return true, nil
			}
		}
		return false, nil
	case goldap.FilterExtensibleMatch:
		return s.extensible(f, e)
	}
	return false, fmt.Errorf("filter type %d is not supported by this test server", f.Tag)
}

// categoryIs reports whether objectCategory value v (a schema DN) is the class named want.
func categoryIs(v, want string) bool {
	dn, err := goldap.ParseDN(v)
	return err == nil && len(dn.RDNs) > 0 && len(dn.RDNs[0].Attributes) == 1 && strings.EqualFold(dn.RDNs[0].Attributes[0].Value, want)
}

func (s *ADServer) extensible(f *ber.Packet, e *adEntry) (bool, error) {
	var rule, attr, value string
	for _, c := range f.Children {
		switch c.Tag {
		case goldap.MatchingRuleAssertionMatchingRule:
			rule = c.Data.String()
		case goldap.MatchingRuleAssertionType:
			attr = c.Data.String()
		case goldap.MatchingRuleAssertionMatchValue:
			value = c.Data.String()
		case goldap.MatchingRuleAssertionDNAttributes:
			return false, errors.New("dnAttributes is not supported by this test server")
		}
	}
	switch rule {
	case OIDBitAnd:
		bits, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false, fmt.Errorf("bit mask %q is not a number", value)
		}
		for _, v := range e.values(attr) {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n&bits == bits {
				return true, nil
			}
		}
		return false, nil
	case OIDInChain:
		target, err := goldap.ParseDN(value)
		if err != nil {
			return false, fmt.Errorf("IN_CHAIN value %q is not a DN", value)
		}
		switch {
		case strings.EqualFold(attr, "member"):
			// e is a group that target is in, through any depth of nesting.
			return s.inChain(e, target), nil
		case strings.EqualFold(attr, "memberOf"):
			// e is in group target, through any depth of nesting.
			for _, g := range s.entries {
				if g.dn.EqualFold(target) {
					return s.inChain(g, e.dn), nil
				}
			}
			return false, nil
		}
		return false, fmt.Errorf("IN_CHAIN on %q is not supported by this test server", attr)
	}
	return false, fmt.Errorf("matching rule %q is not supported by this test server", rule)
}

// inChain reports whether dn is a member of group g, directly or through groups that are
// members of g; a visited set ends cycles.
func (s *ADServer) inChain(g *adEntry, dn *goldap.DN) bool {
	seen := map[*adEntry]bool{g: true}
	queue := []*adEntry{g}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range cur.values("member") {
			md, err := goldap.ParseDN(m)
			if err != nil {
				continue
			}
			if md.EqualFold(dn) {
				return true
			}
			for _, sub := range s.entries {
				if !seen[sub] && sub.dn.EqualFold(md) {
					seen[sub] = true
					queue = append(queue, sub)
				}
			}
		}
	}
	return false
}

func message(id int64, op, controls *ber.Packet) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "Message ID"))
	p.AppendChild(op)
	if controls != nil {
		c := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
		c.AppendChild(controls)
		p.AppendChild(c)
	}
	return p
}

func result(app uint8, code int, msg string) *ber.Packet {
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ber.Tag(app), nil, "Result")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "Result Code"))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "Matched DN"))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, msg, "Diagnostic Message"))
	return p
}

// intOf reads an INTEGER or ENUMERATED element.
func intOf(p *ber.Packet) int64 {
	if v, ok := p.Value.(int64); ok {
		return v
	}
	var n int64
	for _, b := range p.Data.Bytes() {
		n = n<<8 | int64(b)
	}
	return n
}

var _ io.Closer = (*ADServer)(nil)
