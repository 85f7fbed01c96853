// Package netlab builds real NATs in network namespaces for sipnat's tests.
package netlab
