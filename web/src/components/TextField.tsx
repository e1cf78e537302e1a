import type { ReactNode, Ref } from 'react';
import { Field, Input, type InputProps } from '@chakra-ui/react';

interface Props extends Omit<InputProps, 'value' | 'onChange'> {
  ref?: Ref<HTMLInputElement>;
  label: string;
  value: string;
  onChange: (value: string) => void;
  /** Shown under the input while there is no error. */
  helperText?: ReactNode;
  /** Marks the field invalid and is shown instead of the helper text. */
  errorText?: string | null;
}

/** A labelled, required text input: the label names the input for screen readers and tests. */
export function TextField({ label, value, onChange, helperText, errorText, ...input }: Props) {
  return (
    <Field.Root required invalid={!!errorText}>
      <Field.Label>
        {label}
        <Field.RequiredIndicator />
      </Field.Label>
      <Input value={value} onChange={(e) => onChange(e.target.value)} {...input} />
      {errorText ? <Field.ErrorText>{errorText}</Field.ErrorText> : helperText && <Field.HelperText>{helperText}</Field.HelperText>}
    </Field.Root>
  );
}
