// Package deploytest holds test doubles for package deploy: a FakeClock that
// tests advance by hand. It is imported only from tests.
package deploytest
