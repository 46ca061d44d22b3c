package shadow

import (
	"math"
	"strconv"
)

// push and pop maintain the walker's current path.
func (w *walker) push(seg string, index bool) {
	w.segs = append(w.segs, seg)
	w.isIndex = append(w.isIndex, index)
}

func (w *walker) pop() {
	w.segs = w.segs[:len(w.segs)-1]
	w.isIndex = w.isIndex[:len(w.isIndex)-1]
}

// ignored reports whether the current path is declared noise.
func (w *walker) ignored() bool {
	for _, p := range w.c.ignore {
		if p.matches(w.segs) {
			return true
		}
	}
	return false
}

func (w *walker) unordered() bool {
	for _, p := range w.c.unordered {
		if p.matches(w.segs) {
			return true
		}
	}
	return false
}

func (w *walker) matchKey() string {
	for _, kp := range w.c.matchBy {
		if kp.p.matches(w.segs) {
			return kp.key
		}
	}
	return ""
}

// diffAt records a difference at the current path.
func (w *walker) diffAt(typ string, a, b *value) {
	d := Difference{Path: pointer(w.segs), Type: typ}
	d.Signature = generalPointer(w.segs, w.isIndex) + " " + typ
	if a != nil {
		d.Legacy = short(a, 120)
	}
	if b != nil {
		d.Candidate = short(b, 120)
	}
	if a != nil && b != nil && typ == DiffValue {
		if a.kind == kString {
			d.Shape = shapeOf(a.s, b.s)
			for _, re := range w.c.ignoreValues {
				if re.MatchString(a.s) && re.MatchString(b.s) {
					d.Noise = NoiseDeclared
					break
				}
			}
		}
		if a.kind == kNumber && numbersEqual(a.s, b.s) {
			d.Shape = "numeric-equal"
		}
	}
	w.add(d)
}

// springVolatile reports whether key k of a Spring Boot error body differs
// by construction (timestamp, trace), so it is neither compared nor hashed.
func springVolatile(k string) bool { return k == "timestamp" || k == "trace" }

func isSpringError(v *value) bool {
	st, ok1 := v.field("status")
	er, ok2 := v.field("error")
	return ok1 && ok2 && st.kind == kNumber && er.kind == kString
}

// diffValue walks a (legacy) and b (candidate) at the current path.
func (w *walker) diffValue(a, b *value) {
	if len(w.c.ignore) > 0 && w.ignored() {
		return
	}
	if a.kind != b.kind {
		w.diffAt(DiffType, a, b)
		return
	}
	switch a.kind {
	case kNull:
	case kBool:
		if a.b != b.b {
			w.diffAt(DiffValue, a, b)
		}
	case kNumber:
		if a.s != b.s && !(w.c.numeric && numbersEqual(a.s, b.s)) {
			w.diffAt(DiffValue, a, b)
		}
	case kString:
		if a.s != b.s {
			w.diffAt(DiffValue, a, b)
		}
	case kObject:
		w.diffObject(a, b)
	case kArray:
		w.diffArray(a, b)
	}
}

func (w *walker) diffObject(a, b *value) {
	spring := w.c.spring && (isSpringError(a) || isSpringError(b))
	for i, k := range a.keys {
		if spring && springVolatile(k) {
			continue
		}
		j := -1
		if i < len(b.keys) && b.keys[i] == k {
			j = i
		} else {
			j = indexKey(b.keys, k)
		}
		w.push(k, false)
		switch {
		case j < 0:
			if len(w.c.ignore) == 0 || !w.ignored() {
				w.diffAt(DiffMissing, &a.vals[i], nil)
			}
		default:
			w.diffValue(&a.vals[i], &b.vals[j])
		}
		w.pop()
	}
	if w.c.subset {
		return
	}
	for j, k := range b.keys {
		if j < len(a.keys) && a.keys[j] == k {
			continue
		}
		if indexKey(a.keys, k) >= 0 || (spring && springVolatile(k)) {
			continue
		}
		w.push(k, false)
		if len(w.c.ignore) == 0 || !w.ignored() {
			w.diffAt(DiffExtra, nil, &b.vals[j])
		}
		w.pop()
	}
}

func (w *walker) diffArray(a, b *value) {
	if w.unordered() {
		w.diffMultiset(a, b, w.matchKey())
		return
	}
	if len(a.vals) != len(b.vals) {
		w.diffMultiset(a, b, "")
		return
	}
	mark := len(w.diffs)
	var differing []int
	for i := range a.vals {
		before := len(w.diffs)
		w.push(indexName(i), true)
		w.diffValue(&a.vals[i], &b.vals[i])
		w.pop()
		if len(w.diffs) != before {
			differing = append(differing, i)
		}
	}
	// Several differences in an array whose elements are all present in
	// another order are one fact: the order changed.
	if len(differing) > 1 && w.sameMultiset(a, b, differing) {
		w.diffs = w.diffs[:mark]
		w.diffAt(DiffOrder, nil, nil)
	}
}

// sameMultiset reports whether two equally long arrays hold the same
// elements. Positions outside idx compared equal already, so only the
// elements at idx need to be the same bag.
func (w *walker) sameMultiset(a, b *value, idx []int) bool {
	counts := make(map[uint64]int, len(idx))
	for _, i := range idx {
		w.push(indexName(i), true)
		counts[w.hash(&a.vals[i])]++
		w.pop()
	}
	for _, i := range idx {
		w.push(indexName(i), true)
		h := w.hash(&b.vals[i])
		w.pop()
		if counts[h] == 0 {
			return false
		}
		counts[h]--
	}
	return true
}

// diffMultiset compares arrays as bags: equal elements pair up regardless
// of position (or by key field when key != ""); left-overs are paired in
// order and diffed so a changed element reports the changed field, and the
// surplus is reported missing or extra.
func (w *walker) diffMultiset(a, b *value, key string) {
	if len(a.vals) != len(b.vals) {
		w.diffAt(DiffSize, &value{kind: kNumber, s: strconv.Itoa(len(a.vals))},
			&value{kind: kNumber, s: strconv.Itoa(len(b.vals))})
	}
	usedB := make([]bool, len(b.vals))
	var restA []int
	if key != "" {
		byKey := make(map[string][]int, len(b.vals))
		for j := range b.vals {
			if f, ok := b.vals[j].field(key); ok {
				k := short(f, 1<<20)
				byKey[k] = append(byKey[k], j)
			}
		}
		for i := range a.vals {
			f, ok := a.vals[i].field(key)
			var js []int
			if ok {
				js = byKey[short(f, 1<<20)]
			}
			if len(js) == 0 {
				restA = append(restA, i)
				continue
			}
			j := js[0]
			byKey[short(f, 1<<20)] = js[1:]
			usedB[j] = true
			w.push(indexName(i), true)
			w.diffValue(&a.vals[i], &b.vals[j])
			w.pop()
		}
	} else {
		byHash := make(map[uint64][]int, len(b.vals))
		for j := range b.vals {
			w.push(indexName(j), true)
			h := w.hash(&b.vals[j])
			w.pop()
			byHash[h] = append(byHash[h], j)
		}
		for i := range a.vals {
			w.push(indexName(i), true)
			h := w.hash(&a.vals[i])
			w.pop()
			if js := byHash[h]; len(js) > 0 {
				usedB[js[0]] = true
				byHash[h] = js[1:]
				continue
			}
			restA = append(restA, i)
		}
	}
	var restB []int
	for j, used := range usedB {
		if !used {
			restB = append(restB, j)
		}
	}
	n := min(len(restA), len(restB))
	for k := 0; k < n; k++ {
		w.push(indexName(restA[k]), true)
		w.diffValue(&a.vals[restA[k]], &b.vals[restB[k]])
		w.pop()
	}
	for _, i := range restA[n:] {
		w.push(indexName(i), true)
		w.diffAt(DiffMissing, &a.vals[i], nil)
		w.pop()
	}
	for _, j := range restB[n:] {
		w.push(indexName(j), true)
		w.diffAt(DiffExtra, nil, &b.vals[j])
		w.pop()
	}
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// hash is a structural hash of v at the current path that agrees with
// diffValue: ignored paths, learned noise and Spring error fields are left
// out, object key order never matters, unordered arrays hash as bags and,
// with numeric tolerance, numbers hash by value.
func (w *walker) hash(v *value) uint64 {
	if (len(w.c.ignore) > 0 && w.ignored()) || w.noise.valueNoise(w.segs) {
		return 0x9e3779b97f4a7c15
	}
	h := uint64(fnvOffset) ^ uint64(v.kind)
	switch v.kind {
	case kBool:
		if v.b {
			h = mix(h + 1)
		}
	case kNumber:
		if w.c.numeric {
			if f, err := strconv.ParseFloat(v.s, 64); err == nil {
				return mix(h ^ math.Float64bits(f+0)) // +0 folds -0 into 0
			}
		}
		h = hashString(h, v.s)
	case kString:
		h = hashString(h, v.s)
	case kArray:
		bag := w.unordered()
		var sum uint64
		for i := range v.vals {
			w.push(indexName(i), true)
			eh := w.hash(&v.vals[i])
			w.pop()
			if bag {
				sum += mix(eh)
			} else {
				h = mix(h ^ eh)
			}
		}
		h ^= sum
	case kObject:
		spring := w.c.spring && isSpringError(v)
		var sum uint64
		for i, k := range v.keys {
			if spring && springVolatile(k) {
				continue
			}
			w.push(k, false)
			sum += mix(hashString(fnvOffset, k) ^ w.hash(&v.vals[i]))
			w.pop()
		}
		h ^= sum
	}
	return mix(h)
}

// numbersEqual compares two JSON number literals by value.
func numbersEqual(a, b string) bool {
	if a == b {
		return true
	}
	fa, err1 := strconv.ParseFloat(a, 64)
	fb, err2 := strconv.ParseFloat(b, 64)
	return err1 == nil && err2 == nil && fa == fb
}
