import { createContext, type InputHTMLAttributes, type ReactNode, type SelectHTMLAttributes, useContext } from "react";
import type { FormErrors } from "./api.js";

export interface FieldErrorsState {
  /** The last failure's field errors, for one form. */
  errors: FormErrors | null;
  /** Takes one field's error away (the person is typing in it). */
  clear(form: string, name: string): void;
}

export const FieldErrors = createContext<FieldErrorsState>({ errors: null, clear: () => {} });

type FieldProps = { form: string; label: string; name: string } & (
  | ({ as?: "input" } & Omit<InputHTMLAttributes<HTMLInputElement>, "form" | "name">)
  | ({ as: "select"; children: ReactNode } & Omit<SelectHTMLAttributes<HTMLSelectElement>, "form" | "name">)
);

/** A labelled input (or select) with its own error, if the last answer named it, right under it. */
export function Field(props: FieldProps) {
  const { errors, clear } = useContext(FieldErrors);
  const { form, label, name } = props;
  const error = errors?.form === form ? errors.fields[name] : undefined;
  const controlId = `${form}-${name}`;
  const id = `${controlId}-error`;
  const aria = {
    id: controlId,
    "aria-invalid": error === undefined ? undefined : true,
    "aria-describedby": error === undefined ? undefined : id,
  };
  let control: ReactNode;
  if (props.as === "select") {
    const { form: _f, label: _l, as: _a, children, ...rest } = props;
    control = (
      <select {...rest} {...aria} onChange={() => clear(form, name)}>
        {children}
      </select>
    );
  } else {
    const { form: _f, label: _l, as: _a, ...rest } = props;
    control = <input {...rest} {...aria} onInput={() => clear(form, name)} />;
  }
  return (
    <label htmlFor={controlId}>
      {label} {control}
      {error !== undefined && (
        <span className="field-error" id={id} data-error-for={name}>
          {error}
        </span>
      )}
    </label>
  );
}
