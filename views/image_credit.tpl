% # TASL, as CC BY asks of every reuse: Title (linked to the work), Author (linked to them),
% # Source, and License (linked to the licence). outside_link prints text alone for a missing
% # or unsafe URL, so a credit never carries a link the URL policy refuses.
% work = '\u201c' + attr['title'] + '\u201d' if attr.get('title') else 'Image'
{{!outside_link(attr.get('link'), work)}} by {{!outside_link(attr.get('author_url'), attr.get('author') or 'an unknown author')}}{{', ' + attr['source'] if attr.get('source') else ''}}, {{!outside_link(attr.get('license_url'), attr.get('license') or 'licence not stated')}}
