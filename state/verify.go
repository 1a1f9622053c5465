package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"
)

// The bbolt file format, as far as verifyFile reads it (go.etcd.io/bbolt internal/common):
// a page starts with a 16-byte header (id u64, flags u16, count u16, overflow u32); pages
// 0 and 1 are meta pages; branch and leaf elements are 16 bytes each, and an element's key
// and value sit pos bytes after the element itself.
const (
	pageHeaderSize   = 16
	elementSize      = 16
	bucketHeaderSize = 16 // root pgid u64, sequence u64

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	boltVersion  = 2
	noFreelist   = ^uint64(0)
	metaSumBytes = 56 // the meta fields the checksum covers
	maxTreeDepth = 64 // far beyond any real file (fan-out >= 2 per level)
)

// verifyFile walks every page the file's meta page reaches, with bounds-checked reads,
// before bbolt maps the file. bbolt trusts on-disk offsets and counts: a damaged page could
// make it read outside its memory map, allocate without bound or corrupt the Go heap, none
// of which a recover can catch. The walk checks that every page lies inside the file, that
// every element, key and value lies inside its page, that branch and bucket links point at
// pages of the right kind, and that no page is reached twice; it does not check key order.
//
// A file whose meta pages do not validate is left to bbolt, which reports it precisely.
func verifyFile(f io.ReaderAt, size int64) error {
	m, ok := chooseMeta(f, size)
	if !ok {
		return nil
	}
	v := &verifier{f: f, size: size, meta: m, seen: map[uint64]bool{}}
	if m.pgid < 2 || m.pgid > uint64(size)/uint64(m.pageSize) {
		return fmt.Errorf("the meta page counts %d pages but the file holds %d", m.pgid, size/int64(m.pageSize))
	}
	if m.freelist != noFreelist {
		if err := v.freelist(m.freelist); err != nil {
			return fmt.Errorf("freelist: %w", err)
		}
	}
	if err := v.tree(m.root, 0); err != nil {
		return err
	}
	return nil
}

type boltMeta struct {
	pageSize                  uint32
	root, freelist, pgid, txn uint64
}

// chooseMeta reads the meta page bbolt would use: the valid one of the two with the higher
// transaction id.
func chooseMeta(f io.ReaderAt, size int64) (boltMeta, bool) {
	m0, ok0 := readMeta(f, size, 0)
	pageSizes := []int64{1024, 2048, 4096, 8192, 16384, 32768, 65536}
	if ok0 {
		pageSizes = []int64{int64(m0.pageSize)}
	}
	var m1 boltMeta
	ok1 := false
	for _, ps := range pageSizes {
		if m, ok := readMeta(f, size, ps); ok && int64(m.pageSize) == ps && (!ok0 || m.pageSize == m0.pageSize) {
			m1, ok1 = m, true
			break
		}
	}
	switch {
	case ok0 && ok1 && m1.txn > m0.txn:
		return m1, true
	case ok0:
		return m0, true
	default:
		return m1, ok1
	}
}

func readMeta(f io.ReaderAt, size, off int64) (boltMeta, bool) {
	var b [pageHeaderSize + metaSumBytes + 8]byte
	if off+int64(len(b)) > size {
		return boltMeta{}, false
	}
	if _, err := f.ReadAt(b[:], off); err != nil {
		return boltMeta{}, false
	}
	if binary.NativeEndian.Uint16(b[8:]) != metaPageFlag {
		return boltMeta{}, false
	}
	body := b[pageHeaderSize:]
	if binary.NativeEndian.Uint32(body[0:]) != boltMagic || binary.NativeEndian.Uint32(body[4:]) != boltVersion ||
		binary.NativeEndian.Uint64(body[metaSumBytes:]) != fnvSum(body[:metaSumBytes]) {
		return boltMeta{}, false
	}
	m := boltMeta{
		pageSize: binary.NativeEndian.Uint32(body[8:]),
		root:     binary.NativeEndian.Uint64(body[16:]),
		freelist: binary.NativeEndian.Uint64(body[32:]),
		pgid:     binary.NativeEndian.Uint64(body[40:]),
		txn:      binary.NativeEndian.Uint64(body[48:]),
	}
	if m.pageSize < 512 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0 {
		return boltMeta{}, false
	}
	return m, true
}

// fnvSum is the meta page checksum: FNV-1a 64 over the fields before it.
func fnvSum(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

type verifier struct {
	f    io.ReaderAt
	size int64
	meta boltMeta
	seen map[uint64]bool
}

// page reads page id with its overflow pages, after checking they lie inside the file.
func (v *verifier) page(id uint64) ([]byte, error) {
	if id < 2 || id >= v.meta.pgid {
		return nil, fmt.Errorf("page %d is outside the file's %d pages", id, v.meta.pgid)
	}
	if v.seen[id] {
		return nil, fmt.Errorf("page %d is reached twice", id)
	}
	v.seen[id] = true
	ps := int64(v.meta.pageSize)
	var hdr [pageHeaderSize]byte
	if _, err := v.f.ReadAt(hdr[:], int64(id)*ps); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	if got := binary.NativeEndian.Uint64(hdr[0:]); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	overflow := uint64(binary.NativeEndian.Uint32(hdr[12:]))
	if id+overflow >= v.meta.pgid {
		return nil, fmt.Errorf("page %d with %d overflow pages runs past the file's %d pages", id, overflow, v.meta.pgid)
	}
	buf := make([]byte, int64(overflow+1)*ps)
	if _, err := v.f.ReadAt(buf, int64(id)*ps); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, nil
}

func (v *verifier) freelist(id uint64) error {
	p, err := v.page(id)
	if err != nil {
		return err
	}
	if flags := binary.NativeEndian.Uint16(p[8:]); flags != freelistPageFlag {
		return fmt.Errorf("page %d has flags %#x, not a freelist page", id, flags)
	}
	count, start := uint64(binary.NativeEndian.Uint16(p[10:])), uint64(pageHeaderSize)
	if count == 0xFFFF { // the real count is the first id slot
		if len(p) < pageHeaderSize+8 {
			return fmt.Errorf("page %d is too short for its count", id)
		}
		count, start = binary.NativeEndian.Uint64(p[pageHeaderSize:]), pageHeaderSize+8
	}
	if count > (uint64(len(p))-start)/8 {
		return fmt.Errorf("page %d lists %d free pages, more than it can hold", id, count)
	}
	for i := range count {
		if free := binary.NativeEndian.Uint64(p[start+8*i:]); free < 2 || free >= v.meta.pgid {
			return fmt.Errorf("page %d lists free page %d, outside the file", id, free)
		}
	}
	return nil
}

// tree checks the page id and everything below it.
func (v *verifier) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d is nested more than %d levels deep", id, maxTreeDepth)
	}
	p, err := v.page(id)
	if err != nil {
		return err
	}
	return v.node(p, fmt.Sprintf("page %d", id), depth)
}

// node checks a branch or leaf page held in p (a file page, or an inline bucket's page),
// named what in errors.
func (v *verifier) node(p []byte, what string, depth int) error {
	if len(p) < pageHeaderSize {
		return fmt.Errorf("%s is shorter than its header", what)
	}
	flags, count := binary.NativeEndian.Uint16(p[8:]), int(binary.NativeEndian.Uint16(p[10:]))
	if pageHeaderSize+count*elementSize > len(p) {
		return fmt.Errorf("%s holds %d elements, more than fit in %d bytes", what, count, len(p))
	}
	switch flags {
	case branchPageFlag:
		if count == 0 {
			return fmt.Errorf("%s is an empty branch page", what)
		}
		for i := range count {
			e := pageHeaderSize + i*elementSize
			pos, ksize := uint64(binary.NativeEndian.Uint32(p[e:])), uint64(binary.NativeEndian.Uint32(p[e+4:]))
			if uint64(e)+pos+ksize > uint64(len(p)) {
				return fmt.Errorf("%s: branch key %d runs past the page", what, i)
			}
			if err := v.tree(binary.NativeEndian.Uint64(p[e+8:]), depth+1); err != nil {
				return err
			}
		}
	case leafPageFlag:
		for i := range count {
			e := pageHeaderSize + i*elementSize
			eflags := binary.NativeEndian.Uint32(p[e:])
			pos := uint64(binary.NativeEndian.Uint32(p[e+4:]))
			ksize, vsize := uint64(binary.NativeEndian.Uint32(p[e+8:])), uint64(binary.NativeEndian.Uint32(p[e+12:]))
			start := uint64(e) + pos
			if start+ksize+vsize > uint64(len(p)) {
				return fmt.Errorf("%s: element %d runs past the page", what, i)
			}
			if eflags&bucketLeafFlag == 0 {
				continue
			}
			val := p[start+ksize : start+ksize+vsize]
			if len(val) < bucketHeaderSize {
				return fmt.Errorf("%s: bucket %d has a short header", what, i)
			}
			root := binary.NativeEndian.Uint64(val)
			if root != 0 {
				if err := v.tree(root, depth+1); err != nil {
					return err
				}
				continue
			}
			// An inline bucket: its one leaf page follows the header inside the value.
			inline := val[bucketHeaderSize:]
			if len(inline) >= pageHeaderSize && binary.NativeEndian.Uint16(inline[8:]) != leafPageFlag {
				return fmt.Errorf("%s: inline bucket %d is not a leaf page", what, i)
			}
			if err := v.node(inline, fmt.Sprintf("inline bucket %d of %s", i, what), depth+1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s has flags %#x, not a branch or leaf page", what, flags)
	}
	return nil
}

// errVerifyLocked: another process holds the file, so its pages may be mid-write.
var errVerifyLocked = errors.New("state file is locked")

// verifyPath runs verifyFile on the file at path while holding a shared lock on it, so no
// idsync writes it meanwhile; it waits up to timeout for a writer to let go, then returns
// errVerifyLocked. The lock is dropped before returning: bbolt takes its own.
func verifyPath(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // bbolt reports it
	}
	defer func() { _ = f.Close() }()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := tryLockShared(f)
		if err != nil {
			return nil // no locking here (an odd file system): bbolt decides
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return errVerifyLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer unlockFile(f)
	info, err := f.Stat()
	if err != nil {
		return nil
	}
	return verifyFile(f, info.Size())
}
