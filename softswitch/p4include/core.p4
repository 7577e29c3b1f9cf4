/* core.p4 for softswitch: the P4_16 core library declarations (P4_16 spec,
 * appendix "core library"), with the names, types and parameter directions that
 * p4c's p4include/core.p4 uses, so programs behave the same on both. */

#ifndef _CORE_P4_
#define _CORE_P4_

/// Standard error codes. New error codes can be declared by users.
error {
    NoError,               /// No error.
    PacketTooShort,        /// Not enough bits in packet for 'extract'.
    NoMatch,               /// 'select' expression has no matches.
    StackOutOfBounds,      /// Reference to invalid element of a header stack.
    HeaderTooShort,        /// Extracting too many bits into a varbit field.
    ParserTimeout,         /// Parser execution time limit exceeded.
    ParserInvalidArgument  /// Parser operation was called with a value
                           /// not supported by the implementation.
}

extern packet_in {
    /// Read a header from the packet into a fixed-sized header @hdr and advance the cursor.
    void extract<T>(out T hdr);
    /// Read bits from the packet into a variable-sized header @variableSizeHeader.
    void extract<T>(out T variableSizeHeader,
                    in bit<32> variableFieldSizeInBits);
    /// Read bits from the packet without advancing the cursor.
    T lookahead<T>();
    /// Advance the packet cursor by the specified number of bits.
    void advance(in bit<32> sizeInBits);
    /// Length of the packet in bytes (not supported by every target).
    bit<32> length();
}

extern packet_out {
    /// Write @hdr into the output packet, advancing the cursor.
    void emit<T>(in T hdr);
}

// Continue parsing if 'check' is true, else reject with error 'toSignal'.
extern void verify(in bool check, in error toSignal);

/// Built-in action that does nothing.
@noWarn("unused")
action NoAction() {}

/// Standard match kinds for table key fields.
match_kind {
    /// Match bits exactly.
    exact,
    /// Ternary match, using a mask.
    ternary,
    /// Longest-prefix match.
    lpm
}

#endif  /* _CORE_P4_ */
