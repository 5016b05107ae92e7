import CTracetapSys

/// Line by line even into a pipe, so `tracetap demo | tee` and the tests see each line as it happens.
public func lineBufferStandardOutput() { tt_line_buffer_stdout() }
