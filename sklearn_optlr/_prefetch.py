# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""A software prefetch of one row of a C-contiguous matrix, for the compiled kernels.

At batch size 1 the rows are visited in shuffled order, so each one starts with a
cache miss, and a short loop body leaves the processor too little independent work
to hide it: an epoch on 100,000 x 100 (800 bytes a row) took 2.5 times one pass over
``X`` with an otherwise minimal loop. Asking for the row a few steps ahead
(``llvm.prefetch``, a hint that never faults and changes no result) brought the same
loop to 1.2 times. numba has no prefetch of its own, hence this intrinsic.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch_row", "prefetch_slice"]

#: Bytes per cache line on the x86-64 and arm64 machines we target; a longer line
#: only means some redundant hints.
_CACHE_LINE = 64


def _prefetch_bytes(builder, start, n_bytes):
    """Emit one ``llvm.prefetch`` (read, high locality, data cache) per cache line of the
    ``n_bytes`` bytes from the pointer ``start``."""
    byte_pointer = ir.IntType(8).as_pointer()
    int32 = ir.IntType(32)
    prefetch = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]),
        "llvm.prefetch.p0i8",
    )
    address = builder.ptrtoint(start, cgutils.intp_t)
    zero = ir.Constant(cgutils.intp_t, 0)
    step = ir.Constant(cgutils.intp_t, _CACHE_LINE)
    with cgutils.for_range_slice(builder, zero, n_bytes, step) as (offset, _):
        line = builder.inttoptr(builder.add(address, offset), byte_pointer)
        # read (0), high temporal locality (3), data cache (1)
        builder.call(prefetch, [line, int32(0), int32(3), int32(1)])


@intrinsic
def prefetch_row(typingctx, matrix, row):
    """Hint that ``matrix[row, :]`` (2-D, C-contiguous) will be read soon.

    One ``llvm.prefetch`` per cache line of the row. ``row`` must be a valid row index.
    """
    signature = types.void(matrix, row)

    def codegen(context, builder, sig, args):
        matrix_type, row_type = sig.args
        array = context.make_array(matrix_type)(context, builder, args[0])
        index = context.cast(builder, args[1], row_type, types.intp)
        zero = context.get_constant(types.intp, 0)
        start = cgutils.get_item_pointer(context, builder, matrix_type, array, [index, zero])
        item_size = context.get_abi_sizeof(context.get_data_type(matrix_type.dtype))
        n_bytes = builder.mul(
            builder.extract_value(array.shape, 1), context.get_constant(types.intp, item_size)
        )
        _prefetch_bytes(builder, start, n_bytes)
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def prefetch_slice(typingctx, vector, start, stop):
    """Hint that ``vector[start:stop]`` (1-D, contiguous) will be read soon: a CSR row's
    ``data`` or ``indices``. ``start <= stop`` must be valid bounds."""
    signature = types.void(vector, start, stop)

    def codegen(context, builder, sig, args):
        vector_type, start_type, stop_type = sig.args
        array = context.make_array(vector_type)(context, builder, args[0])
        first = context.cast(builder, args[1], start_type, types.intp)
        last = context.cast(builder, args[2], stop_type, types.intp)
        pointer = cgutils.get_item_pointer(context, builder, vector_type, array, [first])
        item_size = context.get_abi_sizeof(context.get_data_type(vector_type.dtype))
        n_bytes = builder.mul(builder.sub(last, first), context.get_constant(types.intp, item_size))
        _prefetch_bytes(builder, pointer, n_bytes)
        return context.get_dummy_value()

    return signature, codegen
