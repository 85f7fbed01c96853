// Package deps holds no code: its test keeps the module's layering as
// DESIGN.md draws it. The leaves (ipaddr, clock, binding) import nothing
// but the standard library; sipmsg, sdp and keepalive link no pion module;
// each heavy dependency stays in the one package that needs it.
package deps
