//go:build !purego

#include "textflag.h"

// func sse2Masks(dst *uint64, end *byte, n int)
// n blocks of 64 bytes, the last ending at end, one mask each into dst.
TEXT ·sse2Masks(SB), NOSPLIT, $0-24
	MOVQ  dst+0(FP), DI
	MOVQ  end+8(FP), SI
	MOVQ  n+16(FP), R8
	MOVQ  R8, AX
	SHLQ  $6, AX
	SUBQ  AX, SI
	ADDQ  $1, SI          // SI = end - 64n + 1, the first block
	MOVQ  $0x0a0a0a0a0a0a0a0a, AX
	MOVQ  AX, X0
	PUNPCKLQDQ X0, X0
loop:
	TESTQ R8, R8
	JZ    done
	MOVOU 0(SI), X1
	MOVOU 16(SI), X2
	MOVOU 32(SI), X3
	MOVOU 48(SI), X4
	PCMPEQB X0, X1
	PCMPEQB X0, X2
	PCMPEQB X0, X3
	PCMPEQB X0, X4
	PMOVMSKB X1, AX
	PMOVMSKB X2, BX
	PMOVMSKB X3, CX
	PMOVMSKB X4, DX
	SHLQ  $16, BX
	SHLQ  $32, CX
	SHLQ  $48, DX
	ORQ   BX, AX
	ORQ   CX, AX
	ORQ   DX, AX
	MOVQ  AX, 0(DI)
	ADDQ  $64, SI
	ADDQ  $8, DI
	DECQ  R8
	JMP   loop
done:
	RET
