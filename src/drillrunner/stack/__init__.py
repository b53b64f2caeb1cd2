"""The stack as drill runs it: settings of the local stack and its bring-up."""
